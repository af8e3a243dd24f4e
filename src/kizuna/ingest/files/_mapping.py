"""Column mapping: which source header feeds which Kizuna field.

A mapping file is YAML or JSON. Either a flat object ``{source header: field}``
or an object with these keys::

    columns:              # source header -> Kizuna field
      顧客番号: user_id
      メール: email
      ポイント残高: attributes.points   # customers/products: a key in ``attributes``
      閲覧ページ: properties.page       # events: a key in ``properties``
      社内メモ: null                    # ignore this column
    defaults:             # a value for fields the file does not carry
      channel: store
      currency: JPY
    use_builtin: true     # also apply the built-in Japanese headers (default true)

Headers are matched after NFKC folding, trimming and lower-casing, so
``メールアドレス`` and ``ﾒｰﾙｱﾄﾞﾚｽ`` (half-width) or ``Email`` and ``EMAIL`` are the
same header. The columns of the file win over the built-in table, which covers
common Japanese shop exports (顧客ID, メールアドレス, 電話番号, 姓, 名, セイ, メイ,
郵便番号, 都道府県, 市区町村, 住所, 生年月日, 性別, 受注番号, 注文番号, 購入日時,
注文日時, 商品コード, SKU, 商品名, カテゴリ, ブランド, 数量, 単価, 値引, クーポン,
合計金額 …) and the Kizuna field names themselves. Fields per kind are listed in
:data:`FIELDS`; a header no field claims is reported as ignored (events put such
columns into ``properties``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "BUILTIN",
    "FIELDS",
    "KINDS",
    "ColumnMap",
    "MappingSpec",
    "bind_columns",
    "check_kind",
    "load_mapping",
]

IDENTIFIERS = ("user_id", "anonymous_id", "email", "phone", "line_user_id", "device_token")
_TRAITS = (
    "last_name", "first_name", "last_name_kana", "first_name_kana", "gender", "birthday",
    "postal_code", "prefecture", "city", "address", "membership_rank", "registered_at",
)  # fmt: skip
_ORDER = (
    "order_id", "ordered_at", "channel", "status", "currency", "subtotal", "order_discount",
    "shipping", "tax", "total", "refunded", "coupon", "store_id", "cancelled_at", "returned_at",
)  # fmt: skip
_ITEM = (
    "sku", "product_id", "product_name", "category", "brand", "quantity", "unit_price",
    "discount", "item_coupon", "is_sale", "returned_quantity",
)  # fmt: skip
_PRODUCT = (
    "sku", "product_id", "name", "category", "brand", "price", "cost", "stock", "url",
    "image_url",
)  # fmt: skip
_CONSENT = ("channel", "status", "occurred_at", "method", "wording", "source", "ip", "address")
_EVENT = ("event", "type", "occurred_at", "message_id", "properties")

FIELDS: dict[str, tuple[str, ...]] = {
    "customers": IDENTIFIERS + _TRAITS,
    "orders": IDENTIFIERS + _ORDER + _ITEM,
    "events": IDENTIFIERS + _EVENT,
    "products": _PRODUCT,
    "consents": IDENTIFIERS + _CONSENT,
}
KINDS = tuple(FIELDS)
# Fields that must have a column (or a default); identifiers: at least one of them.
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": (),
    "orders": ("order_id", "ordered_at"),
    "events": ("event", "occurred_at"),
    "products": ("sku", "name"),
    "consents": ("channel", "status", "occurred_at"),
}
NEEDS_IDENTIFIER = {"customers", "orders", "events", "consents"}

_SHARED = {
    "顧客id": "user_id", "顧客番号": "user_id", "会員id": "user_id", "会員番号": "user_id",
    "customer_id": "user_id", "userid": "user_id",
    "メールアドレス": "email", "メール": "email", "e-mail": "email", "mail": "email",
    "電話番号": "phone", "携帯電話番号": "phone", "tel": "phone",
    "lineユーザーid": "line_user_id", "匿名id": "anonymous_id", "anonymousid": "anonymous_id",
}  # fmt: skip
_BY_KIND: dict[str, dict[str, str]] = {
    "customers": {
        "姓": "last_name", "名": "first_name", "セイ": "last_name_kana", "メイ": "first_name_kana",
        "姓(カナ)": "last_name_kana", "名(カナ)": "first_name_kana", "郵便番号": "postal_code",
        "都道府県": "prefecture", "市区町村": "city", "住所": "address", "生年月日": "birthday",
        "誕生日": "birthday", "性別": "gender", "会員ランク": "membership_rank",
        "登録日": "registered_at", "登録日時": "registered_at", "会員登録日": "registered_at",
    },
    "orders": {
        "受注番号": "order_id", "注文番号": "order_id", "注文id": "order_id",
        "購入日時": "ordered_at", "注文日時": "ordered_at", "受注日時": "ordered_at",
        "購入日": "ordered_at", "注文日": "ordered_at", "受注日": "ordered_at",
        "商品コード": "sku", "品番": "sku", "商品id": "product_id", "商品名": "product_name",
        "カテゴリ": "category", "カテゴリー": "category", "ブランド": "brand", "数量": "quantity",
        "個数": "quantity", "単価": "unit_price", "販売価格": "unit_price", "値引": "discount",
        "値引額": "discount", "割引": "discount", "クーポン": "coupon", "クーポンコード": "coupon",
        "合計金額": "total", "注文金額": "total", "小計": "subtotal", "送料": "shipping",
        "消費税": "tax", "返金額": "refunded", "店舗コード": "store_id", "販売チャネル": "channel",
        "ステータス": "status", "通貨": "currency", "セール": "is_sale",
        "返品数": "returned_quantity", "キャンセル日時": "cancelled_at", "返品日時": "returned_at",
    },
    "events": {
        "イベント名": "event", "イベント": "event", "発生日時": "occurred_at",
        "日時": "occurred_at", "timestamp": "occurred_at", "メッセージid": "message_id",
        "messageid": "message_id", "name": "event",
    },
    "products": {
        "商品コード": "sku", "品番": "sku", "商品id": "product_id", "商品名": "name",
        "カテゴリ": "category", "カテゴリー": "category", "ブランド": "brand", "価格": "price",
        "販売価格": "price", "単価": "price", "原価": "cost", "在庫数": "stock", "在庫": "stock",
        "商品url": "url", "画像url": "image_url",
    },
    "consents": {
        "チャネル": "channel", "チャンネル": "channel", "同意": "status", "配信許可": "status",
        "メルマガ配信": "status", "同意日時": "occurred_at", "日時": "occurred_at",
        "timestamp": "occurred_at", "取得方法": "method", "文言": "wording",
        "取得元": "source", "ipアドレス": "ip", "宛先": "address",
    },
}  # fmt: skip


def _key(header: str) -> str:
    return unicodedata.normalize("NFKC", header).strip().lower()


def _builtin(kind: str) -> dict[str, str]:
    table = {_key(f): f for f in FIELDS[kind] if not f.startswith("properties")}
    table.update({k: v for k, v in _SHARED.items() if v in FIELDS[kind]})
    table.update({_key(k): v for k, v in _BY_KIND[kind].items()})
    return table


BUILTIN = {kind: _builtin(kind) for kind in KINDS}


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """A parsed mapping file: header → field (``None`` ignores), defaults, built-ins on or off."""

    columns: dict[str, str | None] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    use_builtin: bool = True


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Source headers bound to Kizuna fields for one file."""

    kind: str
    fields: dict[str, str]  # source header -> field
    defaults: dict[str, Any]
    ignored: list[str]

    by_field: dict[str, str] = field(default_factory=dict)  # field -> source header

    def __post_init__(self) -> None:
        self.by_field.update({target: header for header, target in self.fields.items()})

    def header_of(self, name: str) -> str:
        """The source header that feeds ``name`` (or the name itself)."""
        return self.by_field.get(name, name)

    def apply(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Map one source row to field values (blank strings become ``None``)."""
        out: dict[str, Any] = dict(self.defaults)
        for header, target in self.fields.items():
            value = row.get(header)
            if isinstance(value, str):
                value = value.strip() or None
            if value is not None or target not in out:
                out[target] = value
        return out


def load_mapping(path: Path | None) -> MappingSpec:
    """Read a YAML or JSON mapping file; raises InvalidInput when it is malformed."""
    if path is None:
        return MappingSpec()
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(Problem("bad_mapping", f"cannot read mapping {path}: {exc}")) from exc
    if not isinstance(data, dict):
        raise InvalidInput(Problem("bad_mapping", f"mapping {path} must be an object"))
    if "columns" not in data and "defaults" not in data:
        data = {"columns": data}
    columns, defaults = data.get("columns") or {}, data.get("defaults") or {}
    if not isinstance(columns, dict) or not isinstance(defaults, dict):
        raise InvalidInput(Problem("bad_mapping", "'columns' and 'defaults' must be objects"))
    return MappingSpec(
        {str(k): (str(v) if v is not None else None) for k, v in columns.items()},
        {str(k): v for k, v in defaults.items()},
        bool(data.get("use_builtin", True)),
    )


def _known(kind: str, target: str) -> bool:
    if target.startswith("attributes."):
        return kind in ("customers", "products")
    if target.startswith("properties."):
        return kind == "events"
    return target in FIELDS[kind]


def check_kind(kind: str) -> None:
    """Raise InvalidInput unless ``kind`` is one Kizuna imports."""
    if kind not in FIELDS:
        raise InvalidInput(
            Problem("unknown_kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        )


def bind_columns(kind: str, headers: Sequence[str], mapping: MappingSpec) -> ColumnMap:
    """Bind a file's headers to fields; raises InvalidInput naming missing required columns."""
    check_kind(kind)
    user = {_key(k): v for k, v in mapping.columns.items()}
    builtin = BUILTIN[kind] if mapping.use_builtin else {_key(f): f for f in FIELDS[kind]}
    fields: dict[str, str] = {}
    ignored: list[str] = []
    problems: list[Problem] = []
    for header in headers:
        key = _key(header)
        target = user[key] if key in user else builtin.get(key)
        if target is None and kind == "events" and key not in user:
            target = f"properties.{header}"
        if target is None:
            ignored.append(header)
        elif not _known(kind, target):
            problems.append(Problem("bad_mapping", f"{target!r} is not a {kind} field", header))
        elif target not in fields.values():
            fields[header] = target
        else:
            ignored.append(header)
    problems += _missing(kind, fields, mapping.defaults, headers)
    if problems:
        raise InvalidInput(problems)
    return ColumnMap(kind, fields, dict(mapping.defaults), ignored)


def _missing(
    kind: str, fields: dict[str, str], defaults: dict[str, Any], headers: Sequence[str]
) -> list[Problem]:
    have = set(fields.values()) | set(defaults)
    shown = ", ".join(headers) or "(none)"
    problems = [
        Problem("missing_column", f"no column for required field {name!r}; the file has: {shown}")
        for name in REQUIRED[kind]
        if name not in have
    ]
    if kind in NEEDS_IDENTIFIER and not have & set(IDENTIFIERS):
        problems.append(
            Problem(
                "missing_column",
                f"no customer identifier column (one of {', '.join(IDENTIFIERS)});"
                f" the file has: {shown}",
            )
        )
    return problems
