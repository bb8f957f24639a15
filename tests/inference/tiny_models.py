"""Tiny random-weight models of both transformers kinds, built on disk during the test run.

Nothing is downloaded: the tokenizer is trained here from a few report-like sentences and the
processors are configured by hand, then everything is saved with ``save_pretrained`` so the
backend goes through the same ``from_pretrained`` loading path as a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "FINDINGS: The lungs are clear. No pleural effusion or pneumothorax.",
    "IMPRESSION: No acute cardiopulmonary abnormality.",
    "Heart size is normal. Mediastinal contours are unremarkable.",
    "There is a nodule in the right upper lobe. Consider follow up CT.",
    "Describe the findings of this {modality} study.",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% else %}{{ item['text'] }}{% endif %}"
    "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_tokenizer(extra_special: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    specials = ["<pad>", "<s>", "</s>", "<unk>", *extra_special]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=specials)
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )
    if extra_special:
        fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return fast


def _always_some_words(model: Any, tokenizer: PreTrainedTokenizerFast) -> None:
    """Random weights may start with a special token or stop at once, which decodes to an
    empty report; a real checkpoint's generation config can carry the same settings."""
    model.generation_config.min_new_tokens = 2
    model.generation_config.suppress_tokens = [
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.unk_token_id,
        *tokenizer.additional_special_tokens_ids,
    ]


def build_vision_encoder_decoder(directory: Path) -> Path:
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = build_tokenizer()
    encoder = ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64,
    )  # fmt: skip
    decoder = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        add_cross_attention=True, is_decoder=True,
    )  # fmt: skip
    torch.manual_seed(0)  # the same random weights every run: the same (non-empty) output
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config.decoder_start_token_id = tokenizer.bos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    _always_some_words(model, tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def build_llava(directory: Path) -> Path:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = build_tokenizer(("<image>",))
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, projection_dim=32,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    _always_some_words(model, tokenizer)
    model.save_pretrained(directory)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        # CLIP's class token comes out of the tower with the patches under "full".
        num_additional_image_tokens=1,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(directory)
    return directory


# --- metric models -------------------------------------------------------------------------

METRIC_WORDS = [
    "findings", "impression", "the", "lungs", "are", "clear", "no", "pleural", "effusion",
    "or", "pneumothorax", "heart", "size", "is", "normal", "small", "left", "right", "basilar",
    "atelectasis", "mild", "cardiomegaly", "edema", "there", "a", ".", ",",
]  # fmt: skip
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tiny_bert(directory: Path) -> tuple[Any, Any]:
    """A BERT config and fast tokenizer saved in ``directory`` (the encoder's half)."""
    from transformers import BertConfig, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join([*BERT_SPECIALS, *METRIC_WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    tokenizer.save_pretrained(directory)
    return config, tokenizer


def chexbert_state(config: Any, head_bias: dict[int, int] | None = None) -> dict[str, Any]:
    """A CheXbert state dict with the published checkpoint's key names (``module.bert.*``,
    ``module.linear_heads.N.*``) around random BERT weights. ``head_bias`` {head: class} zeroes
    every head's weights and makes that class win for any text (the others: class 0, blank)."""
    from transformers import BertModel

    torch.manual_seed(0)
    bert = BertModel(config)
    state = {f"module.bert.{k}": v for k, v in bert.state_dict().items()}
    for head in range(14):
        classes = 2 if head == 13 else 4
        weight = torch.randn(classes, config.hidden_size) * 0.02
        bias = torch.zeros(classes)
        if head_bias is not None:
            weight = torch.zeros(classes, config.hidden_size)
            bias[head_bias.get(head, 0)] = 5.0
        state[f"module.linear_heads.{head}.weight"] = weight
        state[f"module.linear_heads.{head}.bias"] = bias
    return state


def build_chexbert(
    directory: Path, head_bias: dict[int, int] | None = None, *, layout: str = "published"
) -> Path:
    """A CheXbert directory: BERT config.json, vocab.txt and ``chexbert.pth`` as published
    (``{"model_state_dict": ...}`` with ``module.`` keys); ``layout="bare"`` saves a bare state
    dict without the prefix, ``"safetensors"`` a ``model.safetensors``."""
    config, _ = _tiny_bert(directory)
    config.save_pretrained(directory)
    state = chexbert_state(config, head_bias)
    if layout == "published":
        torch.save({"epoch": 1, "model_state_dict": state}, directory / "chexbert.pth")
    elif layout == "bare":
        bare = {k.removeprefix("module."): v for k, v in state.items()}
        torch.save(bare, directory / "chexbert.pth")
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, directory / "model.safetensors")
    return directory


ENTITY_TAGS = ["O", "B-ANAT-DP", "I-ANAT-DP", "B-OBS-DP", "I-OBS-DP", "B-OBS-DA", "I-OBS-DA"]


def build_token_classifier(directory: Path, *, always: str | None = None) -> Path:
    """A BERT token classifier with RadGraph-style BIO entity tags; ``always`` makes that tag
    win for every word (zero classifier weights, one bias)."""
    from transformers import BertForTokenClassification

    config, _ = _tiny_bert(directory)
    config.id2label = dict(enumerate(ENTITY_TAGS))
    config.label2id = {tag: i for i, tag in enumerate(ENTITY_TAGS)}
    torch.manual_seed(0)
    model = BertForTokenClassification(config)
    if always is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[ENTITY_TAGS.index(always)] = 5.0
    model.save_pretrained(directory)
    return directory


TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_causal_lm(directory: Path, *, answer: str | None = None) -> Path:
    """A tiny Llama causal LM with a chat template. ``answer``: the tokenizer holds that text
    as one token and the generation config (as a real checkpoint's can) biases the model to
    say it and stop, so a judge gets a known answer through the real generate path."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    if answer is not None:
        tokenizer.add_tokens([answer])
    tokenizer.chat_template = TEXT_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if answer is None:
        _always_some_words(model, tokenizer)
    else:
        answer_id = tokenizer.convert_tokens_to_ids(answer)
        model.generation_config.sequence_bias = [
            [[answer_id], 1000.0],
            [[answer_id, tokenizer.eos_token_id], 5000.0],
        ]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
