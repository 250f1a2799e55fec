# ruff: noqa: RUF001, E501  (real text in many scripts, written out as prompts are)
"""A corpus of realistic prompts in many scripts and shapes, for the hold's bound.

Each entry is (name, text). The texts are written here (nothing is downloaded):
prose, code, JSON, logs, CSV, SQL, and Chinese, Japanese, Korean, Russian, Arabic,
Hindi and emoji text, the shapes that ``characters / 4`` under-counts.
"""

from __future__ import annotations

import json
import random

__all__ = ["CORPUS", "corpus"]

_ENGLISH = (
    "Summarise the quarterly report below for the board. Keep it under two hundred "
    "words, name the three largest risks, and say which of last quarter's actions "
    "were completed. Revenue grew 12% while operating costs rose 4%; churn fell to "
    "2.1% after the onboarding redesign shipped in March."
)
_PYTHON = '''def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping [start, end) intervals."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged

# Review this function: are there off-by-one errors? {"edge": [0, 0], "neg": [-3, -1]}
'''
_JS = """export async function fetchAll(urls, {concurrency = 4} = {}) {
  const results = new Array(urls.length);
  let next = 0;
  await Promise.all(Array.from({length: concurrency}, async () => {
    while (next < urls.length) { const i = next++; results[i] = await (await fetch(urls[i])).json(); }
  }));
  return results;
}"""
_SQL = (
    "SELECT c.id, c.name, SUM(o.total_cents)/100.0 AS revenue, COUNT(*) FILTER "
    "(WHERE o.status='refunded') AS refunds FROM customers c JOIN orders o ON "
    "o.customer_id=c.id WHERE o.created_at >= now() - interval '90 days' GROUP BY 1,2 "
    "HAVING SUM(o.total_cents) > 100000 ORDER BY revenue DESC LIMIT 50;"
)
_CHINESE = (
    "请根据以下会议纪要，整理出一份行动清单，并为每一项指定负责人和截止日期。"
    "会议讨论了新产品的发布计划、市场推广预算以及客户反馈中提到的主要问题。"
    "技术团队表示，性能优化需要额外两周时间；市场部希望在十月底之前完成宣传材料。"
)
_JAPANESE = (
    "以下の顧客からの問い合わせに、丁寧な日本語で返信してください。"
    "注文した商品がまだ届いておらず、追跡番号も確認できないとのことです。"
)
_KOREAN = "다음 문서를 세 문장으로 요약하고, 핵심 위험 요소를 목록으로 정리해 주세요. 일정은 다음 주 금요일까지입니다."
_RUSSIAN = (
    "Переведите следующий текст на английский язык, сохраняя деловой стиль. "
    "Поставка оборудования задерживается из-за таможенного оформления."
)
_ARABIC = "يرجى تلخيص التقرير التالي في فقرة واحدة مع ذكر أهم التوصيات والمخاطر المحتملة للمشروع."
_HINDI = "कृपया नीचे दी गई रिपोर्ट का सारांश तीन वाक्यों में लिखें और मुख्य जोखिमों की सूची बनाएं।"
_EMOJI = (
    "Rate these reactions 🎉🔥👍🏽😂🙏🏻💯🚀❤️‍🔥🧑🏾‍💻 and explain each one in a short sentence."
)


def _json_records(rng: random.Random, n: int) -> str:
    records = [
        {
            "id": f"{rng.getrandbits(64):016x}",
            "user": {
                "name": rng.choice(["Ana", "Bo", "Chen Wei", "Dmitri"]),
                "age": rng.randint(18, 90),
            },
            "tags": rng.sample(["a", "b", "beta", "vip", "eu", "us", "trial"], 3),
            "balance": round(rng.uniform(-500, 5000), 2),
            "active": rng.random() > 0.5,
        }
        for _ in range(n)
    ]
    return "Validate these records against the schema and list the invalid ones:\n" + json.dumps(
        records
    )


def _logs(rng: random.Random, n: int) -> str:
    lines = [
        f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z level={rng.choice(['info', 'warn', 'error'])} "
        f"req={rng.getrandbits(48):012x} path=/api/v2/items/{rng.randint(1, 99999)} "
        f"status={rng.choice([200, 201, 404, 500, 503])} dur_ms={rng.uniform(0.5, 900):.1f}"
        for _ in range(n)
    ]
    return "Find the root cause of the 5xx errors in these logs:\n" + "\n".join(lines)


def _csv(rng: random.Random, n: int) -> str:
    rows = ["date,sku,qty,unit_price,region"] + [
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},SKU-{rng.randint(100, 999)}-"
        f"{rng.choice('ABCDEFGH')},{rng.randint(1, 500)},{rng.uniform(1, 900):.2f},"
        f"{rng.choice(['north', 'south', 'east', 'west'])}"
        for _ in range(n)
    ]
    return "Which region's revenue fell month over month?\n" + "\n".join(rows)


def _mixed_chinese_code(rng: random.Random) -> str:
    return _CHINESE + "\n```python\n" + _PYTHON + "```\n" + _json_records(rng, 3)


def corpus(scale: int = 1, seed: int = 7) -> list[tuple[str, str]]:
    """The corpus; ``scale`` repeats each prose text and lengthens generated data."""
    rng = random.Random(seed)
    return [
        ("english", _ENGLISH * scale),
        ("python", _PYTHON * scale),
        ("javascript", _JS * scale),
        ("sql", _SQL * scale),
        ("json", _json_records(rng, 8 * scale)),
        ("logs", _logs(rng, 20 * scale)),
        ("csv", _csv(rng, 30 * scale)),
        ("chinese", _CHINESE * scale),
        ("japanese", _JAPANESE * scale),
        ("korean", _KOREAN * scale),
        ("russian", _RUSSIAN * scale),
        ("arabic", _ARABIC * scale),
        ("hindi", _HINDI * scale),
        ("emoji", _EMOJI * scale),
        ("chinese+code+json", _mixed_chinese_code(rng) * scale),
        ("hex ids", " ".join(f"{rng.getrandbits(128):032x}" for _ in range(20 * scale))),
    ]


CORPUS = corpus()
