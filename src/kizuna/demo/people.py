"""Japanese people for the demo shop: names with kana, prefectures weighted by population.

All data here is invented or public (prefecture populations are the 2020 census,
rounded to thousands; the postal codes are each city's real three-digit prefix).
Email domains are the reserved ``example.*`` names only, so no demo address can
ever reach a real mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

__all__ = ["FAMILY_NAMES", "GIVEN_NAMES", "PREFECTURES", "People", "draw_people"]

# (kanji, katakana, romaji), most common first.
FAMILY_NAMES: tuple[tuple[str, str, str], ...] = (
    ("佐藤", "サトウ", "sato"), ("鈴木", "スズキ", "suzuki"), ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"), ("伊藤", "イトウ", "ito"), ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"), ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"), ("加藤", "カトウ", "kato"), ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"), ("佐々木", "ササキ", "sasaki"), ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"), ("井上", "イノウエ", "inoue"), ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"), ("斎藤", "サイトウ", "saito"), ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"), ("森", "モリ", "mori"), ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"), ("阿部", "アベ", "abe"), ("石川", "イシカワ", "ishikawa"),
    ("山下", "ヤマシタ", "yamashita"), ("中島", "ナカジマ", "nakajima"),
    ("石井", "イシイ", "ishii"),
    ("小川", "オガワ", "ogawa"), ("前田", "マエダ", "maeda"), ("岡田", "オカダ", "okada"),
    ("長谷川", "ハセガワ", "hasegawa"), ("藤田", "フジタ", "fujita"), ("後藤", "ゴトウ", "goto"),
    ("近藤", "コンドウ", "kondo"), ("村上", "ムラカミ", "murakami"), ("遠藤", "エンドウ", "endo"),
    ("青木", "アオキ", "aoki"), ("坂本", "サカモト", "sakamoto"),
)  # fmt: skip

# gender -> (kanji, katakana, romaji)
GIVEN_NAMES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "female": (
        ("陽子", "ヨウコ", "yoko"), ("恵子", "ケイコ", "keiko"), ("美咲", "ミサキ", "misaki"),
        ("さくら", "サクラ", "sakura"), ("結衣", "ユイ", "yui"), ("陽菜", "ヒナ", "hina"),
        ("葵", "アオイ", "aoi"), ("真由美", "マユミ", "mayumi"), ("裕子", "ユウコ", "yuko"),
        ("直美", "ナオミ", "naomi"), ("智子", "トモコ", "tomoko"), ("愛", "アイ", "ai"),
        ("彩", "アヤ", "aya"), ("舞", "マイ", "mai"), ("明美", "アケミ", "akemi"),
        ("久美子", "クミコ", "kumiko"), ("由美", "ユミ", "yumi"), ("美穂", "ミホ", "miho"),
        ("千尋", "チヒロ", "chihiro"), ("遥", "ハルカ", "haruka"), ("菜々子", "ナナコ", "nanako"),
        ("花子", "ハナコ", "hanako"), ("麻衣", "マイ", "mai"), ("香織", "カオリ", "kaori"),
    ),
    "male": (
        ("太郎", "タロウ", "taro"), ("翔太", "ショウタ", "shota"), ("大輔", "ダイスケ", "daisuke"),
        ("健太", "ケンタ", "kenta"), ("拓也", "タクヤ", "takuya"), ("直樹", "ナオキ", "naoki"),
        ("誠", "マコト", "makoto"), ("浩", "ヒロシ", "hiroshi"), ("隆", "タカシ", "takashi"),
        ("蓮", "レン", "ren"), ("悠真", "ユウマ", "yuma"), ("陽翔", "ハルト", "haruto"),
        ("大翔", "ヒロト", "hiroto"), ("和也", "カズヤ", "kazuya"), ("健一", "ケンイチ", "kenichi"),
        ("修", "オサム", "osamu"), ("剛", "ツヨシ", "tsuyoshi"), ("亮", "リョウ", "ryo"),
        ("学", "マナブ", "manabu"), ("翼", "ツバサ", "tsubasa"),
    ),
}  # fmt: skip

# (prefecture, population in thousands, ((city, postal prefix), ...))
PREFECTURES: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...] = (
    ("北海道", 5225, (("札幌市", "060"), ("旭川市", "070"), ("函館市", "040"))),
    ("青森県", 1238, (("青森市", "030"), ("八戸市", "031"))),
    ("岩手県", 1211, (("盛岡市", "020"), ("一関市", "021"))),
    ("宮城県", 2302, (("仙台市", "980"), ("石巻市", "986"))),
    ("秋田県", 960, (("秋田市", "010"), ("横手市", "013"))),
    ("山形県", 1068, (("山形市", "990"), ("鶴岡市", "997"))),
    ("福島県", 1833, (("福島市", "960"), ("郡山市", "963"), ("いわき市", "970"))),
    ("茨城県", 2867, (("水戸市", "310"), ("つくば市", "305"))),
    ("栃木県", 1933, (("宇都宮市", "320"), ("小山市", "323"))),
    ("群馬県", 1939, (("前橋市", "371"), ("高崎市", "370"))),
    ("埼玉県", 7345, (("さいたま市", "330"), ("川越市", "350"), ("川口市", "332"))),
    ("千葉県", 6284, (("千葉市", "260"), ("船橋市", "273"), ("柏市", "277"))),
    ("東京都", 14048, (("世田谷区", "154"), ("新宿区", "160"), ("渋谷区", "150"),
                     ("八王子市", "192"))),
    ("神奈川県", 9237, (("横浜市", "220"), ("川崎市", "210"), ("相模原市", "252"))),
    ("新潟県", 2201, (("新潟市", "950"), ("長岡市", "940"))),
    ("富山県", 1035, (("富山市", "930"), ("高岡市", "933"))),
    ("石川県", 1133, (("金沢市", "920"), ("白山市", "924"))),
    ("福井県", 767, (("福井市", "910"), ("敦賀市", "914"))),
    ("山梨県", 810, (("甲府市", "400"), ("富士吉田市", "403"))),
    ("長野県", 2048, (("長野市", "380"), ("松本市", "390"))),
    ("岐阜県", 1979, (("岐阜市", "500"), ("大垣市", "503"))),
    ("静岡県", 3633, (("静岡市", "420"), ("浜松市", "430"))),
    ("愛知県", 7542, (("名古屋市", "460"), ("豊田市", "471"), ("岡崎市", "444"))),
    ("三重県", 1770, (("津市", "514"), ("四日市市", "510"))),
    ("滋賀県", 1414, (("大津市", "520"), ("草津市", "525"))),
    ("京都府", 2578, (("京都市", "600"), ("宇治市", "611"))),
    ("大阪府", 8838, (("大阪市", "530"), ("堺市", "590"), ("豊中市", "560"))),
    ("兵庫県", 5465, (("神戸市", "650"), ("姫路市", "670"), ("西宮市", "662"))),
    ("奈良県", 1324, (("奈良市", "630"), ("橿原市", "634"))),
    ("和歌山県", 923, (("和歌山市", "640"), ("田辺市", "646"))),
    ("鳥取県", 553, (("鳥取市", "680"), ("米子市", "683"))),
    ("島根県", 671, (("松江市", "690"), ("出雲市", "693"))),
    ("岡山県", 1888, (("岡山市", "700"), ("倉敷市", "710"))),
    ("広島県", 2800, (("広島市", "730"), ("福山市", "720"))),
    ("山口県", 1342, (("山口市", "753"), ("下関市", "750"))),
    ("徳島県", 720, (("徳島市", "770"), ("阿南市", "774"))),
    ("香川県", 950, (("高松市", "760"), ("丸亀市", "763"))),
    ("愛媛県", 1335, (("松山市", "790"), ("今治市", "794"))),
    ("高知県", 692, (("高知市", "780"), ("南国市", "783"))),
    ("福岡県", 5135, (("福岡市", "810"), ("北九州市", "800"), ("久留米市", "830"))),
    ("佐賀県", 811, (("佐賀市", "840"), ("唐津市", "847"))),
    ("長崎県", 1312, (("長崎市", "850"), ("佐世保市", "857"))),
    ("熊本県", 1738, (("熊本市", "860"), ("八代市", "866"))),
    ("大分県", 1123, (("大分市", "870"), ("別府市", "874"))),
    ("宮崎県", 1069, (("宮崎市", "880"), ("都城市", "885"))),
    ("鹿児島県", 1588, (("鹿児島市", "890"), ("霧島市", "899"))),
    ("沖縄県", 1467, (("那覇市", "900"), ("沖縄市", "904"))),
)  # fmt: skip

_TOWNS = ("中央", "本町", "栄町", "緑が丘", "桜台", "旭町", "幸町", "若葉", "東", "西")
_DOMAINS = ("example.com", "example.jp", "example.net", "example.org", "mail.example.jp",
            "mobile.example.com")  # fmt: skip
_DOMAIN_WEIGHTS = np.array([0.34, 0.30, 0.14, 0.10, 0.07, 0.05])
_MOBILE = ("090", "080", "070")
_FAMILY_WEIGHTS = 1.0 / np.arange(1, len(FAMILY_NAMES) + 1) ** 0.6
_POP = np.array([p[1] for p in PREFECTURES], dtype=float)
_BIJECTION_MOD = 10**8  # emails and phones use idx * prime mod 10**8: unique for 10**8 people


@dataclass(frozen=True, slots=True)
class Person:
    """One generated person's personal data, in the canonical forms the validators produce."""

    last_name: str
    first_name: str
    last_name_kana: str
    first_name_kana: str
    gender: str | None
    birthday: date | None
    email: str
    phone: str | None
    prefecture: str
    city: str
    postal_code: str
    address: str


People = list[Person]


def _pick(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def _email(person_no: int, family: str, given: str, pattern: int, year: int) -> str:
    # The trailing number is unique per person, so addresses never collide.
    if pattern == 0:
        return f"{given}.{family}{person_no}"
    if pattern == 1:
        return f"{family}_{given[0]}{year % 100:02d}x{person_no}"
    if pattern == 2:
        return f"{given}{family[0]}.{person_no}"
    return f"{family}.{given}-{person_no}"


def draw_people(
    rng: np.random.Generator, first_index: int, n: int, salt: int, today: date
) -> People:
    """Draw ``n`` people; emails and phones are unique across indexes for one ``salt``."""
    female = rng.random(n) < 0.72
    unknown = rng.random(n) < 0.03
    family = _pick(rng, n, _FAMILY_WEIGHTS).tolist()
    given_f = rng.integers(0, len(GIVEN_NAMES["female"]), n).tolist()
    given_m = rng.integers(0, len(GIVEN_NAMES["male"]), n).tolist()
    age = np.clip(rng.normal(41, 12, n), 18, 85)
    birth_days = (age * 365.25).astype(int).tolist()
    has_birthday = (rng.random(n) < 0.85).tolist()
    has_phone = (rng.random(n) < 0.7).tolist()
    pref = _pick(rng, n, _POP).tolist()
    city_pick = rng.random(n).tolist()
    postal = rng.integers(0, 10_000, n).tolist()
    house = rng.integers(1, 30, (n, 3)).tolist()
    domain = _pick(rng, n, _DOMAIN_WEIGHTS).tolist()
    pattern = rng.integers(0, 4, n).tolist()
    mobile = rng.integers(0, 3, n).tolist()
    town = rng.integers(0, len(_TOWNS), n).tolist()
    people: People = []
    for i in range(n):
        gender = "female" if female[i] else "male"
        names = GIVEN_NAMES[gender]
        given = names[given_f[i] if female[i] else given_m[i]]
        fam = FAMILY_NAMES[family[i]]
        name, _, cities = PREFECTURES[pref[i]]
        city, prefix = cities[int(city_pick[i] * len(cities))]
        number = ((first_index + i) * 7_919 + salt) % _BIJECTION_MOD
        birthday = date.fromordinal(today.toordinal() - birth_days[i])
        local = _email(number, fam[2], given[2], pattern[i], birthday.year)
        phone = f"+81{_MOBILE[mobile[i]][1:]}{(number * 48_271) % _BIJECTION_MOD:08d}"
        h = house[i]
        people.append(Person(
            fam[0], given[0], fam[1], given[1], None if unknown[i] else gender,
            birthday if has_birthday[i] else None, f"{local}@{_DOMAINS[domain[i]]}",
            phone if has_phone[i] else None, name, city, f"{prefix}-{postal[i]:04d}",
            f"{name}{city}{_TOWNS[town[i]]}{h[0]}-{h[1]}-{h[2]}",
        ))  # fmt: skip
    return people
