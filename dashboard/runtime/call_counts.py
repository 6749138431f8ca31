"""How many times each engine function really ran (cache misses). Tests read it."""

from collections import Counter

engine_calls: Counter = Counter()
