"""The synthetic catalogue: which products exist, what they look like, and which split they are in.

Products are drawn in *families* that share category and main colour (``a red mug``); the members
of a family are copies of one another with one or two identity-bearing details changed: pattern,
pattern scale, secondary colour, printed brand text or logo. That is what makes the benchmark a
fine-grained retrieval task: global colour and shape (which off-the-shelf ImageNet features capture
well) only narrow the search down to the family, and telling its members apart needs the detail.

Everything here is pure Python driven by one ``numpy.random.Generator``, so the catalogue is a
function of the seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

CATEGORIES = ("tshirt", "bag", "shoe", "bottle", "box", "can", "mug", "book", "jar", "cap")
PATTERNS = ("plain", "stripes", "dots", "checks", "print")
PATTERN_SCALES = ("small", "medium", "large")
PRINT_MOTIFS = ("stars", "triangles", "flowers", "waves")
STRIPE_ANGLES = (0, 45, 90, 135)
LOGOS = ("none", "circle", "triangle", "star", "diamond", "ring", "cross", "hexagon", "heart")
BRANDS = ("ACME", "NOVA", "ZEN", "KIVO", "LUMA", "ORBI", "PEAK", "TIDE", "VERA", "MOXY",
          "BRIX", "FJOR", "GLOW", "HAZE", "JUNO", "KORA", "ONYX", "RUNE", "SAGA", "YUKI")

# Named colours: names are attribute values, RGB is what gets painted.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 32, 40), "orange": (238, 120, 30), "yellow": (240, 200, 40), "green": (46, 150, 70),
    "teal": (20, 140, 140), "blue": (40, 100, 210), "navy": (25, 40, 95), "purple": (120, 60, 160),
    "pink": (236, 120, 170), "brown": (120, 72, 40), "black": (30, 30, 32), "white": (240, 240, 236),
    "grey": (128, 130, 134), "beige": (214, 196, 160),
}
COLOURS = tuple(PALETTE)
# Identity details that a family member may change (see module docstring), and how often each is
# the one that changes: mostly the subtle ones (text, logo, pattern scale), so that siblings stay
# close in global appearance, sometimes the pattern type or the secondary colour.
MUTABLE = ("pattern", "pattern_scale", "colour2", "text", "logo")
MUTATION_WEIGHTS = (0.12, 0.22, 0.16, 0.28, 0.22)


@dataclass(frozen=True)
class ProductSpec:
    """One product's look. ``variant`` holds the non-identity randomness (pattern phase, motif
    jitter): two specs that differ only in ``variant`` would be the same product, so uniqueness is
    checked on :meth:`key`."""

    product_id: str
    category: str
    colour: str
    colour2: str
    pattern: str
    pattern_scale: str  # "none" for plain
    pattern_angle: int  # stripes only; 0 otherwise
    motif: str  # print only; "none" otherwise
    text: str  # brand text or "none"
    logo: str  # logo shape or "none"
    variant: int  # seed for the phase of the pattern and similar non-identity details

    def key(self) -> tuple:
        return (self.category, self.colour, self.colour2, self.pattern, self.pattern_scale,
                self.pattern_angle, self.motif, self.text, self.logo)

    def attributes(self) -> dict[str, str]:
        """The manifest's ``attr_`` columns (all known; ``none`` means there is no such detail)."""
        return {"category": self.category, "colour": self.colour, "colour2": self.colour2,
                "pattern": self.pattern, "pattern_scale": self.pattern_scale, "motif": self.motif,
                "text": self.text, "logo": self.logo}

    def tags(self) -> tuple[str, ...]:
        """Catalogue tags as a shop listing would carry them (``category:mug``, ``text:ACME``...)."""
        tags = [f"category:{self.category}", f"colour:{self.colour}", f"colour2:{self.colour2}",
                f"pattern:{self.pattern}"]
        if self.pattern == "print":
            tags.append(f"motif:{self.motif}")
        if self.text != "none":
            tags.append(f"text:{self.text}")
        if self.logo != "none":
            tags.append(f"logo:{self.logo}")
        return tuple(tags)


def colour_distance(a: str, b: str) -> float:
    pa, pb = np.array(PALETTE[a], float), np.array(PALETTE[b], float)
    return float(np.linalg.norm(pa - pb))


def _pick(rng: np.random.Generator, options: tuple | list):
    return options[int(rng.integers(len(options)))]


def luma(colour: str) -> float:
    r, g, b = PALETTE[colour]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _contrasting(rng: np.random.Generator, colour: str, exclude: str | None = None) -> str:
    """A secondary colour that stays distinguishable from the main one after a colour cast, blur
    and JPEG (which keeps luminance better than chroma): far in RGB *and* in luminance. Every main
    colour has at least five such partners."""
    options = [c for c in COLOURS
               if c != exclude and colour_distance(c, colour) > 110 and abs(luma(c) - luma(colour)) > 45]
    return _pick(rng, options)


def _random_detail(rng: np.random.Generator, spec: ProductSpec, field_name: str) -> ProductSpec:
    """Return ``spec`` with one identity detail redrawn (it may come out unchanged; callers retry)."""
    if field_name == "pattern":
        pattern = _pick(rng, PATTERNS)
        return _with_pattern(rng, spec, pattern)
    if field_name == "pattern_scale":
        if spec.pattern == "plain":
            return _with_pattern(rng, spec, _pick(rng, PATTERNS[1:]))
        return replace(spec, pattern_scale=_pick(rng, PATTERN_SCALES),
                       pattern_angle=_pick(rng, STRIPE_ANGLES) if spec.pattern == "stripes" else 0)
    if field_name == "colour2":
        return replace(spec, colour2=_contrasting(rng, spec.colour, exclude=spec.colour2))
    if field_name == "text":
        return replace(spec, text=_pick(rng, BRANDS) if rng.random() < 0.85 else "none")
    if field_name == "logo":
        return replace(spec, logo=_pick(rng, LOGOS[1:]) if rng.random() < 0.85 else "none")
    raise ValueError(field_name)


def _with_pattern(rng: np.random.Generator, spec: ProductSpec, pattern: str) -> ProductSpec:
    if pattern == "plain":
        return replace(spec, pattern="plain", pattern_scale="none", pattern_angle=0, motif="none")
    return replace(spec, pattern=pattern, pattern_scale=_pick(rng, PATTERN_SCALES),
                   pattern_angle=_pick(rng, STRIPE_ANGLES) if pattern == "stripes" else 0,
                   motif=_pick(rng, PRINT_MOTIFS) if pattern == "print" else "none")


def _family_founder(rng: np.random.Generator, category: str, colour: str) -> ProductSpec:
    spec = ProductSpec(product_id="", category=category, colour=colour,
                       colour2=_contrasting(rng, colour), pattern="plain", pattern_scale="none",
                       pattern_angle=0, motif="none",
                       text=_pick(rng, BRANDS) if rng.random() < 0.7 else "none",
                       logo=_pick(rng, LOGOS[1:]) if rng.random() < 0.6 else "none",
                       variant=int(rng.integers(2**31)))
    return _with_pattern(rng, spec, _pick(rng, PATTERNS))


def _mutant(rng: np.random.Generator, parent: ProductSpec, taken: set[tuple]) -> ProductSpec | None:
    """A sibling of ``parent`` that differs in one (sometimes two) identity details."""
    for _ in range(40):
        n_changes = 1 if rng.random() < 0.8 else 2
        fields = rng.choice(len(MUTABLE), size=n_changes, replace=False, p=MUTATION_WEIGHTS)
        child = parent
        for f in fields:
            child = _random_detail(rng, child, MUTABLE[int(f)])
        child = replace(child, variant=int(rng.integers(2**31)))
        if child.key() not in taken:
            return child
    return None


def make_family_members(rng: np.random.Generator, founders: list[ProductSpec], n: int,
                        taken: set[tuple]) -> list[ProductSpec]:
    """``n`` new products, each a mutant of a random member of a random family in ``founders``.

    ``taken`` (identity keys already used) is updated in place, so products stay unique.
    """
    members: list[ProductSpec] = []
    pool = list(founders)
    attempts = 0
    while len(members) < n:
        attempts += 1
        if attempts > 100 * (n + 10):
            raise RuntimeError("could not draw enough distinct products; the catalogue is saturated")
        parent = pool[int(rng.integers(len(pool)))]
        child = _mutant(rng, parent, taken)
        if child is None:
            continue
        taken.add(child.key())
        members.append(child)
        pool.append(child)
    return members


def n_test_products(n_products: int, test_fraction: float) -> int:
    """How many of ``n_products`` go to the test split (at least one product in each split)."""
    return min(max(1, int(round(test_fraction * n_products))), max(1, n_products - 1))


@dataclass(frozen=True)
class Catalogue:
    train: list[ProductSpec]
    test: list[ProductSpec]
    distractors: list[ProductSpec]  # test split, shop images only

    @property
    def all(self) -> list[ProductSpec]:
        return [*self.train, *self.test, *self.distractors]


def make_catalogue(rng: np.random.Generator, n_products: int, test_fraction: float,
                   n_distractors: int, family_size: float = 7.0) -> Catalogue:
    """Draw ``n_products`` products in families of about ``family_size``, split them by product
    into train and test, then add ``n_distractors`` test-split look-alikes of the test products
    (shop images only: they enlarge the gallery with near misses)."""
    if n_products < 2:
        raise ValueError(f"n_products must be at least 2 (one train and one test product), got {n_products}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    if n_distractors < 0:
        raise ValueError(f"n_distractors must be >= 0, got {n_distractors}")

    # At least one family per category (when there are enough products), so even a tiny set shows
    # every silhouette.
    n_families = max(min(n_products, len(CATEGORIES)), int(round(n_products / family_size)))
    # Cycle through the categories so that every one of them appears once there are >= 10 families.
    cat_order = list(rng.permutation(len(CATEGORIES)))
    families: list[tuple[str, str]] = []
    while len(families) < n_families:
        category = CATEGORIES[cat_order[len(families) % len(CATEGORIES)]]
        unused = [c for c in COLOURS if (category, c) not in families]
        families.append((category, _pick(rng, unused or COLOURS)))

    taken: set[tuple] = set()
    products: list[ProductSpec] = []
    founders: list[list[ProductSpec]] = []
    for category, colour in families:
        founder = _family_founder(rng, category, colour)
        while founder.key() in taken:
            founder = _family_founder(rng, category, colour)
        taken.add(founder.key())
        founders.append([founder])
        products.append(founder)
    # The rest of the products: siblings, spread over the families at random.
    while len(products) < n_products:
        family = founders[int(rng.integers(len(founders)))]
        child = make_family_members(rng, family, 1, taken)[0]
        family.append(child)
        products.append(child)
    products = products[:n_products]

    order = rng.permutation(len(products))
    n_test = n_test_products(n_products, test_fraction)
    test_idx, train_idx = sorted(order[:n_test].tolist()), sorted(order[n_test:].tolist())
    width = max(5, len(str(n_products + n_distractors)))
    train = [replace(products[i], product_id=f"p{i:0{width}d}") for i in train_idx]
    test = [replace(products[i], product_id=f"p{i:0{width}d}") for i in test_idx]
    distractors = make_family_members(rng, test, n_distractors, taken)
    distractors = [replace(d, product_id=f"d{i:0{width}d}") for i, d in enumerate(distractors)]
    return Catalogue(train=train, test=test, distractors=distractors)
