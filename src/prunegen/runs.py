"""prunegen-runs, also `python -m prunegen.runs` (CONTRACT.md): the runs under a folder, `diff A B`, `latest`
(`prunegen.reporting.listing`)."""

from prunegen.reporting.listing import main

if __name__ == "__main__":
    main()
