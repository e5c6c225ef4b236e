"""The console's strings: one text per key across every page module (a module cannot change the words of another's
page by adding a key already taken), each in Chinese and English."""

from __future__ import annotations

import pytest

from hub.web.app import create_app
from hub.web.console.pages import TEXT, Texts


def test_a_key_already_taken_with_other_words_is_refused():
    texts = Texts({"answer": ("结论", "Answer")})
    texts.update({"answer": ("结论", "Answer"), "new": ("新", "New")})  # the same words again, or a new key: fine
    with pytest.raises(KeyError, match="answer"):
        texts.update({"answer": ("认定结果", "Answer")})
    assert texts["answer"] == ("结论", "Answer")


def test_every_page_modules_texts_live_together_each_in_both_languages():
    create_app()  # imports every page module, each adding its texts
    assert all(isinstance(v, tuple) and len(v) == 2 and all(v) for v in TEXT.values())
    # the auditor's name for an unusual kind is the auditor's, not the caseworker's message of the same subject
    assert TEXT["lookup_rate_limited"] == ("超出频次的户籍成员查询", "household lookup over the rate limit")
    assert "{limit}" in TEXT["lookup_over_limit"][0]
