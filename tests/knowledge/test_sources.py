"""Knowledge kept as CSV or Markdown, errors that point at the line, and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeError, Matcher, find_collisions, fingerprint, load_folder


def test_csv_rows_with_one_id_make_one_entry(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text(
        "id,question,answer_zh,answer_en,tags\n"
        "hours,客服几点上班,每天 9:00–21:00。,Every day 9:00–21:00.,contact\n"
        "hours,What are your opening hours?,,,\n"
        'gift,"Can you gift wrap it, please?",,Yes: choose gift wrapping at checkout.,orders\n',
        encoding="utf-8",
    )
    entries = {e.id: e for e in load_folder(tmp_path)}
    assert entries["hours"].questions == ("客服几点上班", "What are your opening hours?")
    assert entries["hours"].answer_for("zh") == "每天 9:00–21:00。"
    assert entries["hours"].answer_for("en") == "Every day 9:00–21:00."
    assert entries["gift"].tags == ("orders",)
    assert Matcher(list(entries.values())).match("opening hours")[0].entry_id == "hours"


def test_markdown_headings_are_questions_and_the_text_below_the_answer(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text(
        "# Our FAQ\n\n"
        "## How do I reset my password? | I forgot my password\n"
        "<!-- id: password -->\n"
        "Click **Forgot password** on the login page.\n\n"
        "It takes a minute.\n\n"
        "## 忘记密码怎么办 | 密码忘了\n"
        "<!-- id: password -->\n"
        "在登录页点击“忘记密码”。\n\n"
        "## Do you ship abroad?\n"
        "Not yet.\n",
        encoding="utf-8",
    )
    entries = {e.id: e for e in load_folder(tmp_path)}
    password = entries["password"]
    assert password.questions[:2] == ("How do I reset my password?", "I forgot my password")
    assert "忘记密码怎么办" in password.questions
    assert password.answer_for("en").endswith("It takes a minute.")
    assert password.answer_for("zh") == "在登录页点击“忘记密码”。"
    assert entries["do-you-ship-abroad"].answer_for("en") == "Not yet."


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("faq.md", "## A question\n\n## Another\nAn answer\n", r"faq\.md:1: 'A question' has no"),
        ("faq.csv", "id,question\nx,\n", r"faq\.csv:2: id and question must not be empty"),
        ("faq.csv", "question,answer\nq,a\n", r"faq\.csv:1: the header needs"),
        ("faq.yaml", "- id: x\n  questions: [a\n  answer: b\n", r"faq\.yaml:3: not valid YAML"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=where):
        load_folder(tmp_path)


def test_the_fingerprint_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- id: a\n  questions: [q]\n  answer: x\n")
    first = fingerprint(tmp_path)
    (tmp_path / "b.md").write_text("## q2\nanswer\n")
    second = fingerprint(tmp_path)
    (tmp_path / "synonyms.yaml").write_text("refund: [money back]\n")
    assert len({first, second, fingerprint(tmp_path)}) == 3


def test_collisions_find_the_same_question_under_two_entries(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(
        "- id: a\n  questions: ['How do I cancel?']\n  answer: x\n"
        "- id: b\n  questions: ['how do I cancel']\n  answer: y\n"
        "- id: c\n  questions: ['Where is the invoice?']\n  answer: z\n"
    )
    [collision] = find_collisions(Matcher(load_folder(tmp_path)), threshold=70)
    assert {collision.entry, collision.other} == {"a", "b"} and collision.duplicate


def test_a_large_knowledge_base_is_matched_through_the_shortlist() -> None:
    from knowledge import FaqEntry
    from knowledge.matcher import SHORTLIST_ABOVE

    topics = ["refund", "warranty", "invoice", "delivery", "password", "coupon"]
    entries = [
        FaqEntry(
            id=f"e{n}",
            questions=(
                f"question {n} about {topics[n % 6]} number {n}",
                f"ask {n} {topics[n % 6]}",
            ),
            answers=(("en", "x"),),
        )
        for n in range(SHORTLIST_ABOVE)
    ]
    entries.append(
        FaqEntry(id="target", questions=("How long does a refund take?",), answers=(("en", "y"),))
    )
    matcher = Matcher(entries)
    assert matcher._shortlist is not None
    [best, *_] = matcher.match("how long does the refund take")
    assert best.entry_id == "target" and best.raw > 90
    assert matcher.match("zzzz qqqq") == []  # nothing in common: nothing to offer
