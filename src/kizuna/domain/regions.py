"""Japan's 47 prefectures (都道府県) and the eight regions (地方) they group into.

The eight-region scheme taught in Japanese schools: 北海道, 東北, 関東, 中部,
近畿 (関西), 中国, 四国, 九州・沖縄 (三重 counts as 近畿). Prefectures carry their
JIS X 0401 code. :func:`find_prefecture` accepts the full name (東京都), the name
without its suffix (東京), the English name in any case (Tokyo) or the two-digit code.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

__all__ = [
    "PREFECTURES",
    "REGIONS",
    "UNKNOWN_AREA",
    "UNKNOWN_AREA_EN",
    "Prefecture",
    "Region",
    "find_prefecture",
    "find_region",
    "prefecture_names",
    "region_of",
]

UNKNOWN_AREA = "不明"
UNKNOWN_AREA_EN = "Unknown"


@dataclass(frozen=True, slots=True)
class Region:
    """A region (地方): a stable key, its Japanese and English names."""

    key: str
    name_ja: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Prefecture:
    """A prefecture: JIS code, Japanese and English names, and its region."""

    code: str
    name_ja: str
    name_en: str
    region: Region


_HOKKAIDO = Region("hokkaido", "北海道", "Hokkaido")
_TOHOKU = Region("tohoku", "東北", "Tohoku")
_KANTO = Region("kanto", "関東", "Kanto")
_CHUBU = Region("chubu", "中部", "Chubu")
_KINKI = Region("kinki", "近畿", "Kinki (Kansai)")
_CHUGOKU = Region("chugoku", "中国", "Chugoku")
_SHIKOKU = Region("shikoku", "四国", "Shikoku")
_KYUSHU = Region("kyushu_okinawa", "九州・沖縄", "Kyushu and Okinawa")

REGIONS: tuple[Region, ...] = (
    _HOKKAIDO, _TOHOKU, _KANTO, _CHUBU, _KINKI, _CHUGOKU, _SHIKOKU, _KYUSHU,
)  # fmt: skip

_TABLE: tuple[tuple[str, str, Region], ...] = (
    ("北海道", "Hokkaido", _HOKKAIDO),
    ("青森県", "Aomori", _TOHOKU), ("岩手県", "Iwate", _TOHOKU), ("宮城県", "Miyagi", _TOHOKU),
    ("秋田県", "Akita", _TOHOKU), ("山形県", "Yamagata", _TOHOKU),
    ("福島県", "Fukushima", _TOHOKU),
    ("茨城県", "Ibaraki", _KANTO), ("栃木県", "Tochigi", _KANTO), ("群馬県", "Gunma", _KANTO),
    ("埼玉県", "Saitama", _KANTO), ("千葉県", "Chiba", _KANTO), ("東京都", "Tokyo", _KANTO),
    ("神奈川県", "Kanagawa", _KANTO),
    ("新潟県", "Niigata", _CHUBU), ("富山県", "Toyama", _CHUBU), ("石川県", "Ishikawa", _CHUBU),
    ("福井県", "Fukui", _CHUBU), ("山梨県", "Yamanashi", _CHUBU), ("長野県", "Nagano", _CHUBU),
    ("岐阜県", "Gifu", _CHUBU), ("静岡県", "Shizuoka", _CHUBU), ("愛知県", "Aichi", _CHUBU),
    ("三重県", "Mie", _KINKI), ("滋賀県", "Shiga", _KINKI), ("京都府", "Kyoto", _KINKI),
    ("大阪府", "Osaka", _KINKI), ("兵庫県", "Hyogo", _KINKI), ("奈良県", "Nara", _KINKI),
    ("和歌山県", "Wakayama", _KINKI),
    ("鳥取県", "Tottori", _CHUGOKU), ("島根県", "Shimane", _CHUGOKU),
    ("岡山県", "Okayama", _CHUGOKU), ("広島県", "Hiroshima", _CHUGOKU),
    ("山口県", "Yamaguchi", _CHUGOKU),
    ("徳島県", "Tokushima", _SHIKOKU), ("香川県", "Kagawa", _SHIKOKU),
    ("愛媛県", "Ehime", _SHIKOKU), ("高知県", "Kochi", _SHIKOKU),
    ("福岡県", "Fukuoka", _KYUSHU), ("佐賀県", "Saga", _KYUSHU), ("長崎県", "Nagasaki", _KYUSHU),
    ("熊本県", "Kumamoto", _KYUSHU), ("大分県", "Oita", _KYUSHU), ("宮崎県", "Miyazaki", _KYUSHU),
    ("鹿児島県", "Kagoshima", _KYUSHU), ("沖縄県", "Okinawa", _KYUSHU),
)  # fmt: skip

PREFECTURES: tuple[Prefecture, ...] = tuple(
    Prefecture(f"{i:02d}", ja, en, region) for i, (ja, en, region) in enumerate(_TABLE, start=1)
)


def _key(text: str) -> str:
    # NFKC folds full-width letters and digits (ＴＯＫＹＯ, １３) before matching.
    return unicodedata.normalize("NFKC", text).strip().casefold()


_ROMAJI_SUFFIX = {"都": "-to", "府": "-fu", "県": "-ken"}


@cache
def _index() -> dict[str, Prefecture]:
    index: dict[str, Prefecture] = {}
    for p in PREFECTURES:
        suffix = _ROMAJI_SUFFIX.get(p.name_ja[-1], "")
        short = p.name_ja[:-1] if suffix else p.name_ja
        names = (p.name_ja, short, p.name_en, p.name_en + suffix, p.code, str(int(p.code)))
        index.update((_key(name), p) for name in names)
    return index


def find_prefecture(name: str | None) -> Prefecture | None:
    """The prefecture named by ``name`` (Japanese, English or JIS code); ``None`` if unknown."""
    if not name:
        return None
    return _index().get(_key(name))


def region_of(prefecture: str | None) -> Region | None:
    """The region (地方) a prefecture belongs to; ``None`` for a missing or unknown name."""
    found = find_prefecture(prefecture)
    return found.region if found else None


# Everyday names of regions beyond the school scheme's own (関西 is 近畿 to most people).
_REGION_ALIASES = {
    "関西": "kinki", "kansai": "kinki", "九州": "kyushu_okinawa", "kyushu": "kyushu_okinawa",
}  # fmt: skip


def find_region(name: str | None) -> Region | None:
    """The region named by ``name`` (key, Japanese or English name, 関西); ``None`` if unknown."""
    if not name:
        return None
    wanted = _key(name)
    wanted = _REGION_ALIASES.get(wanted, wanted)
    for region in REGIONS:
        names = (region.key, region.name_ja, region.name_en, region.name_en.split(" ")[0])
        if wanted in {_key(n) for n in names}:
            return region
    return None


def prefecture_names(prefecture: Prefecture) -> frozenset[str]:
    """Every spelling of ``prefecture`` a profile may hold (東京都, 東京, Tokyo, Tokyo-to, 13)."""
    return frozenset(name for name, p in _index().items() if p is prefecture) | {
        prefecture.name_ja,
        prefecture.name_en,
    }
