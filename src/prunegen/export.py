"""prunegen-export, also `python -m prunegen.export` (CONTRACT.md): the entry point of `prunegen.deploy.export`,
which compacts a masked checkpoint's generator, verifies it, times it and writes export.json."""

from prunegen.deploy.export import main

if __name__ == "__main__":
    main()
