"""Audits of the operator semantics: the float32 kernel against independent references
(:mod:`.kernel`, :mod:`.references`)."""
