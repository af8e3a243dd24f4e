"""Message content: sandboxed templates, personalization contexts, blocks and the legal footer.

``spec`` (a template as a marketer writes it, per channel) → ``environment`` (the
Jinja2 sandbox, its filters and the block loader) → ``render`` (a compiled template
turns one customer's context into a :class:`kizuna.channels.base.Content`);
``context`` builds those contexts for a batch of customers in a few queries;
``validation`` checks a template against sample customers before it is saved;
``library`` saves (checked), previews and lists; ``footer`` adds what Japan's
Specified Electronic Mail Act requires on marketing email.
"""

__all__: list[str] = []
