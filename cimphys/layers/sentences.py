"""Sentences bundled for fidelity and retrieval checks (written for cimphys, public domain).

``PAIRS`` holds 30 paraphrase pairs on unrelated topics, so that a sentence's nearest
neighbour in embedding space is its paraphrase; :func:`sentences` flattens them to 60 strings
(pair k at positions 2k and 2k+1).  ``CALIBRATION`` holds 8 more sentences, none of them among
the 60, for the ADC calibration batch: ranges set on the evaluated inputs would be an oracle.
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["CALIBRATION", "PAIRS", "sentences"]

PAIRS: tuple[tuple[str, str], ...] = (
    ("A man is playing a guitar on the stage.", "Someone performs a song on a guitar in front of an audience."),
    ("The cat is sleeping on the warm windowsill.", "A kitten naps in the sun by the window."),
    ("The stock market fell sharply this morning.", "Share prices dropped steeply at the opening bell."),
    ("She baked fresh bread for breakfast.", "In the morning she made a loaf of homemade bread."),
    ("The train to the airport was delayed by an hour.", "Our airport train arrived sixty minutes late."),
    ("Heavy rain flooded the streets of the city.", "The town's roads were under water after the storm."),
    ("The children are building a sandcastle on the beach.", "Kids make a castle out of sand by the sea."),
    ("He repaired the flat tyre on his bicycle.", "He fixed the punctured wheel of his bike."),
    ("The museum opens a new exhibition about ancient Egypt.", "An exhibit on the pharaohs is opening at the museum."),
    ("Doctors recommend drinking plenty of water every day.", "Physicians advise staying well hydrated daily."),
    ("The football team won the championship final.", "The soccer club took the title in the last match."),
    ("A chef is slicing onions in the kitchen.", "A cook cuts up onions at the counter."),
    ("The spacecraft landed safely on the surface of Mars.", "The probe touched down on the red planet without damage."),
    ("My laptop battery drains very quickly.", "The battery of my notebook computer runs out fast."),
    ("The orchestra played a symphony by Beethoven.", "Musicians performed one of Beethoven's symphonies."),
    ("The farmer is harvesting wheat in the field.", "Grain is being collected from the farm's fields."),
    ("Please turn off the lights when you leave.", "Switch the lamps off as you go out."),
    ("The company announced record profits for the year.", "The firm reported its highest annual earnings ever."),
    ("A dog is chasing a ball across the park.", "A puppy runs after a ball on the grass."),
    ("The bridge was closed for repairs all weekend.", "Maintenance work shut the bridge from Saturday to Sunday."),
    ("Scientists discovered a new species of frog in the rainforest.",
     "Researchers found a previously unknown frog in the jungle."),
    ("The restaurant serves excellent Italian pasta.", "That place makes wonderful spaghetti and other Italian dishes."),
    ("Snow covered the mountains overnight.", "By morning the peaks were white with fresh snow."),
    ("The teacher explained the equation on the blackboard.", "The instructor worked through the formula for the class."),
    ("An old woman is knitting a wool scarf.", "An elderly lady knits a woollen scarf."),
    ("The plane took off despite the strong wind.", "The aircraft departed even though it was very windy."),
    ("He forgot his umbrella and got soaked.", "Without his umbrella he was drenched by the rain."),
    ("The new phone has a much better camera.", "The latest smartphone takes far better photos."),
    ("Volunteers cleaned the litter from the river bank.", "Helpers picked up the rubbish along the riverside."),
    ("The library extended its opening hours during exams.", "During the exam period the library stays open longer."),
)


CALIBRATION: tuple[str, ...] = (
    "The committee will meet again next Tuesday to discuss the budget.",
    "A flock of birds flew south over the lake at dusk.",
    "She carefully painted the fence a bright shade of green.",
    "Engineers tested the new engine in the cold chamber.",
    "The bakery on the corner sells croissants until noon.",
    "Thunder rolled across the valley as the hikers hurried home.",
    "The software update fixed several problems with the printer.",
    "Two friends shared a pot of tea and talked for hours.",
)


def sentences(n: int | None = None) -> list[str]:
    """The first ``n`` bundled sentences (all 60 when ``n`` is None), pairs kept adjacent."""
    flat = [s for pair in PAIRS for s in pair]
    if n is None:
        return flat
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(flat):
        raise InputError(f"n: expected an integer in [1, {len(flat)}], got {n!r}")
    return flat[:n]
