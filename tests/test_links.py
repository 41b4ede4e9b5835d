"""The deep links' own percent-encoding equals ``urllib.parse.quote(.., safe="")``."""

from __future__ import annotations

import random
from urllib.parse import quote

from geo_service.domain.links import _quote

#: Unreserved characters, reserved ones, Chinese, CJK brackets, accents, an emoji,
#: controls: every class quote() treats differently.
ALPHABET = "aZ09_.-~ /?&=%#+:;,@!$'()*[]中文【】é😀\t\n\x00\x7f"


def test_quote_matches_the_standard_library_on_random_text() -> None:
    rng = random.Random(16)
    for _ in range(5000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 24)))
        assert _quote(text) == quote(text, safe=""), text


def test_quote_of_typical_station_names() -> None:
    for text in ("【示例】基准测试站点0017649", "昆明市示例路502号", "SY-0001", "", "A B"):
        assert _quote(text) == quote(text, safe="")
