"""Generation, side by side: the labs' one-at-a-time loop against the course's batched generation.

Same model, same prompts (the evaluation prompt on the test dialogues), same greedy configuration. The
outputs must be identical -- the course is faster, not different -- and the benchmark fails otherwise.
"""

from __future__ import annotations

import os
import time

from benchmarks.lab_way import lab_generate
from utils import data, evaluation, scoring, templates
from utils.config import Profile


class OutputsDiffer(AssertionError):
    """The two ways produced different text for the same prompt: the comparison would be unfair."""


def evaluation_prompts(profile: Profile, n: int | None = None) -> list[str]:
    """The course's evaluation prompts for the first ``n`` test dialogues (all with ``None``)."""
    test = data.target_test(profile)
    if n is not None:
        if n > len(test):
            raise ValueError(f"Asked for {n} test dialogues but the {profile.name} profile has {len(test)}; "
                             "ask for fewer.")
        test = test.select(range(n))
    template = templates.get_template(data.TARGET_TASK, scoring.EVAL_TEMPLATE)
    return [template.render_source(row) for row in test]


def course_generate(model, tokenizer, prompts, gen_config, batch_size: int, max_source_length: int) -> list[str]:
    """The course's way: :func:`utils.evaluation.generate` (batched, length-sorted, dynamic padding)."""
    return evaluation.generate(model, tokenizer, prompts, gen_config, batch_size=batch_size,
                               max_source_length=max_source_length, progress=False)


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def check_identical(lab: list[str], course: list[str], prompts: list[str]) -> None:
    """Raise :class:`OutputsDiffer` naming the first differing prompt, if any output differs."""
    differing = [i for i, (a, b) in enumerate(zip(lab, course, strict=True)) if a != b]
    if differing:
        i = differing[0]
        raise OutputsDiffer(
            f"{len(differing)} of {len(prompts)} outputs differ between the labs' and the course's generation; "
            f"first #{i}: lab {lab[i]!r} vs course {course[i]!r}. Both must use the same model and generation "
            "config; fix that before comparing speed."
        )


def compare_generation(model, tokenizer, prompts: list[str], gen_config, batch_size: int,
                       max_source_length: int = 512) -> dict:
    """Time both ways on ``prompts`` and check they agree; returns examples/s of each and the speedup.

    The course's way runs before and after the labs' (its time is the mean of both runs), so a change in
    the machine's load during the labs' long loop does not favour either side.
    """
    warm = prompts[:2]  # first calls pay one-off costs; keep them out of both timings
    lab_generate(model, tokenizer, warm, gen_config)
    course_generate(model, tokenizer, warm, gen_config, batch_size, max_source_length)

    load_before = os.getloadavg()[0]
    course, course_s1 = timed(course_generate, model, tokenizer, prompts, gen_config, batch_size, max_source_length)
    lab, lab_s = timed(lab_generate, model, tokenizer, prompts, gen_config)
    course_again, course_s2 = timed(course_generate, model, tokenizer, prompts, gen_config, batch_size,
                                    max_source_length)
    check_identical(lab, course, prompts)
    check_identical(course_again, course, prompts)
    course_s = (course_s1 + course_s2) / 2
    n = len(prompts)
    return {
        "n_examples": n,
        "batch_size": batch_size,
        "max_new_tokens": gen_config.max_new_tokens,
        "identical_outputs": True,
        "lab": {"seconds": lab_s, "examples_per_s": n / lab_s,
                "how": "one prompt at a time, padded to 512 tokens"},
        "course": {"seconds": course_s, "examples_per_s": n / course_s,
                   "how": f"batches of {batch_size}, sorted by length, padded to each batch's longest"},
        "speedup": lab_s / course_s,
        "load_average": [load_before, os.getloadavg()[0]],
    }
