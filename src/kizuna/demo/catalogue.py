"""The demo shop's catalogue: categories, brands and SKUs with prices, costs and stock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

__all__ = ["CATEGORIES", "Catalogue", "build_catalogue", "pick_skus", "product_rows"]

# category -> (share of purchases, tax rate, brands, (product name, list price in yen), ...)
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...], tuple[tuple[str, int], ...]]] = {
    "skincare": (0.30, 0.10, ("Hadaya", "Kizuna Botanics"), (
        ("化粧水 しっとり", 2_970), ("美容液 ビタミンC", 5_940), ("クレンジングオイル", 2_420),
        ("保湿クリーム", 4_180), ("日焼け止め SPF50+", 1_980), ("オールインワンジェル", 3_520),
        ("シートマスク 7枚入", 1_320), ("アイクリーム", 6_600))),
    "haircare": (0.14, 0.10, ("Tsuya Lab",), (
        ("アミノ酸シャンプー", 2_640), ("トリートメント", 2_640), ("ヘアオイル", 3_080),
        ("スカルプブラシ", 1_650), ("詰め替えセット", 4_400))),
    "supplements": (0.16, 0.08, ("Genki Nutrition",), (
        ("マルチビタミン 30日分", 1_980), ("乳酸菌サプリ", 2_980),
        ("コラーゲンドリンク 10本", 3_240),
        ("鉄分＋葉酸", 1_580), ("プロテイン 抹茶味", 4_320))),
    "food": (0.18, 0.08, ("Satoyama Farm", "Umami Kitchen"), (
        ("有機緑茶 100g", 1_296), ("だしパック 30袋", 2_160), ("玄米グラノーラ", 1_080),
        ("発酵黒にんにく", 2_700), ("国産はちみつ 300g", 3_240), ("スープ詰め合わせ", 3_888))),
    "apparel": (0.14, 0.10, ("Kinari Wear",), (
        ("オーガニックコットンTシャツ", 4_950), ("リネンシャツ", 9_900),
        ("ルームウェア上下", 8_800),
        ("靴下 3足組", 1_980), ("カシミヤストール", 14_300))),
    "home": (0.08, 0.10, ("Kurashi Goods",), (
        ("今治タオル", 2_200), ("アロマディフューザー", 6_380), ("竹の歯ブラシ 4本", 1_100),
        ("ステンレスボトル", 3_300))),
}  # fmt: skip
_VARIANTS = (("", 1.0), ("（大容量）", 1.7), ("（お試し）", 0.45))


@dataclass(frozen=True, slots=True)
class Catalogue:
    """SKUs as parallel arrays, sorted by category then price (for price-targeted picks)."""

    sku: list[str]
    name: list[str]
    category: list[str]
    brand: list[str]
    price: np.ndarray
    cost: np.ndarray
    stock: np.ndarray
    category_index: np.ndarray
    category_names: list[str]
    category_share: np.ndarray
    tax_rate: np.ndarray

    def __len__(self) -> int:
        return len(self.sku)


def _entries() -> list[tuple[int, str, str, str, int]]:
    entries = []
    for c, (name, (_, _, brands, products)) in enumerate(CATEGORIES.items()):
        for p, (product, price) in enumerate(products):
            brand = brands[p % len(brands)]
            for suffix, factor in _VARIANTS[: 1 + p % 3]:
                entries.append((c, name, brand, product + suffix, int(round(price * factor, -1))))
    entries.sort(key=lambda e: (e[0], e[4]))
    return entries


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """The catalogue: ~60 SKUs, costs 25–45 % of price, about one SKU in ten out of stock."""
    entries = _entries()
    n = len(entries)
    price = np.array([e[4] for e in entries], dtype=float)
    stock = rng.integers(5, 800, n)
    stock[rng.random(n) < 0.1] = 0
    names = list(CATEGORIES)
    return Catalogue(
        sku=[f"SKU-{names[e[0]][:3].upper()}-{i + 1:03d}" for i, e in enumerate(entries)],
        name=[e[3] for e in entries],
        category=[e[1] for e in entries],
        brand=[e[2] for e in entries],
        price=price,
        cost=np.round(price * rng.uniform(0.25, 0.45, n)),
        stock=stock,
        category_index=np.array([e[0] for e in entries]),
        category_names=names,
        category_share=np.array([v[0] for v in CATEGORIES.values()]),
        tax_rate=np.array([CATEGORIES[e[1]][1] for e in entries]),
    )


def pick_skus(
    catalogue: Catalogue, rng: np.random.Generator, category: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """For each line, the SKU of ``category`` whose price is nearest ``target`` (with jitter)."""
    key = catalogue.category_index * 1e7 + catalogue.price
    counts = np.bincount(catalogue.category_index, minlength=len(catalogue.category_names))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.searchsorted(key, category * 1e7 + target) + rng.integers(-1, 2, len(target))
    picked: np.ndarray = np.clip(pos, start[category], start[category] + counts[category] - 1)
    return picked


def product_rows(
    workspace_id: uuid.UUID, catalogue: Catalogue, now: datetime
) -> list[dict[str, Any]]:
    """``products`` rows, shaped as :func:`kizuna.store.commerce.upsert_products` writes them."""
    return [
        {
            "workspace_id": workspace_id,
            "sku": sku,
            "product_id": sku,
            "name": catalogue.name[i],
            "category": catalogue.category[i],
            "brand": catalogue.brand[i],
            "price": float(catalogue.price[i]),
            "cost": float(catalogue.cost[i]),
            "stock": int(catalogue.stock[i]),
            "url": f"https://shop.example.jp/products/{sku.lower()}",
            "image_url": f"https://shop.example.jp/images/{sku.lower()}.jpg",
            "attributes": {"tax_rate": float(catalogue.tax_rate[i])},
            "updated_at": now,
        }
        for i, sku in enumerate(catalogue.sku)
    ]
