"""Chat templates: render a model's Jinja chat template the way transformers does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from tts_sim.errors import ConfigError

#: ChatML (SmolLM2, Qwen, ...): the default for LLaMA-architecture models without a template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: Gemma turn format (the official Gemma 3 template, text-only): system text joins the first user turn.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

#: Plain dialogue for base (pretrained, not chat-tuned) models, which have no chat template: a base model
#: wrapped in turn markers it never saw echoes the prompt (Gemma-3-270M base did, every time), while it
#: continues a plain "User: ... / Assistant:" transcript with an answer.
PLAIN_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
PLAIN_SOURCE = "default (plain dialogue, base model)"

#: Tokens that end an assistant turn, looked up in a model's vocabulary to extend its EOS ids.
END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<eos>", "</s>")


def default_chat_template(architecture: str, base: bool = False) -> tuple[str, str]:
    """(template, description) for a model whose files carry no chat template (``base``: a pretrained model,
    not chat-tuned, gets the plain dialogue)."""
    if base:
        return PLAIN_TEMPLATE, PLAIN_SOURCE
    if architecture.startswith("gemma"):
        return GEMMA_TEMPLATE, "default (Gemma turns)"
    return CHATML_TEMPLATE, "default (ChatML)"


def _raise(message: str) -> None:
    raise ConfigError(f"chat template: {message}")


@lru_cache(maxsize=16)
def _compile(template: str):  # -> jinja2.Template
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    try:
        return env.from_string(template)
    except TemplateError as exc:
        raise ConfigError(f"chat template does not compile: {exc}") from None


def render_chat(template: str, messages: Sequence[Mapping[str, str]], *, bos_token: str | None = None,
                eos_token: str | None = None, add_generation_prompt: bool = True) -> str:
    """Render ``messages`` ([{"role", "content"}, ...]) with a Jinja chat template."""
    from jinja2 import TemplateError

    if not messages:
        raise ConfigError("chat needs at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise ConfigError(f"chat message {i} needs string 'role' and 'content'")
    try:
        return _compile(template).render(messages=[dict(m) for m in messages], bos_token=bos_token or "",
                                         eos_token=eos_token or "", add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:
        raise ConfigError(f"chat template failed: {exc}") from None
