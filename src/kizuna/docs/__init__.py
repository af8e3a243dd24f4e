"""Documentation generated from the code: the data dictionary (``kizuna docs data``)."""

from kizuna.docs.dictionary import DataDictionary, build_dictionary, undocumented_personal
from kizuna.docs.render import to_json, to_markdown

__all__ = ["DataDictionary", "build_dictionary", "to_json", "to_markdown", "undocumented_personal"]
