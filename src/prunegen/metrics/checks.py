"""A feature extractor must prove itself before its scores are shown: a domain classifier that cannot tell
the dataset's classes apart (too little data, classes of noise) makes FID, KID and class coverage numbers
that mean nothing, so the run stops before training and says why."""

import logging

log = logging.getLogger("prunegen")

MIN_ACCURACY = 0.8  # the default of metrics.min_extractor_accuracy; digits' classifier reaches 0.98 (32 px)
MIN_IMAGES = 50  # the default of metrics.min_extractor_images: fewer held-out images make the accuracy itself noise


def check_extractor(accuracy: float | None, held_out: int, num_classes: int, min_accuracy: float = MIN_ACCURACY,
                    min_images: int = MIN_IMAGES) -> bool:
    """Refuse a domain classifier below `min_accuracy` on its held-out split, or measured on fewer than
    `min_images` images; returns whether it also passes the defaults (False: the scores are recorded with
    `valid: false`, because the user lowered a threshold knowingly)."""
    if accuracy is None:  # Inception, or an extractor of one's own without a held-out accuracy
        return True
    chance = 1 / num_classes if num_classes else None
    said = (f"the domain classifier reaches {accuracy:.1%} accuracy on {held_out} held-out images"
            + (f" ({num_classes} classes: chance is {chance:.0%})" if chance else ""))
    ways = ("Ways out: more data (more images per class, or a larger data.test_fraction for the held-out split), "
            "metrics=inception with its weights (metrics.inception_weights=PATH), an extractor of your own by "
            "_target_ (configs/metrics/extractor/), or lower the threshold knowingly: the run then records "
            "valid: false beside its scores and prunegen-table marks it")
    if held_out < min_images:
        raise ValueError(f"{said}; metrics.min_extractor_images={min_images} are needed before its accuracy means "
                         f"anything. {ways} (metrics.min_extractor_images=N)")
    if accuracy < min_accuracy:
        raise ValueError(f"{said}, below metrics.min_extractor_accuracy={min_accuracy}: scores in its feature space "
                         f"would mean nothing. {ways} (metrics.min_extractor_accuracy=X)")
    valid = accuracy >= MIN_ACCURACY and held_out >= MIN_IMAGES
    if not valid:
        log.warning(f"{said}, below the defaults (metrics.min_extractor_accuracy={MIN_ACCURACY}, "
                    f"metrics.min_extractor_images={MIN_IMAGES}): its scores are recorded with valid: false")
    return valid
