"""Chronos-style encoder-decoder: `transformers`' T5 built from a config (random init, no download) with a
linear (tied) or Fourier head over the 4094 value tokens.

    from model import ModelConfig, build_model
    model = build_model(ModelConfig(size="mini", head="fourier", num_frequencies=550))
    loss, parts = model.loss(input_ids, attention_mask, labels)    # training
    samples, pmfs = model.sample(input_ids, attention_mask, horizon=12, num_samples=20)

Batch shapes (int64 token ids from tokenizer.Tokenizer, ids 0/1 = PAD/EOS, 2..4095 = values):
  input_ids, attention_mask: (B, C) with C <= context length (512 in the paper); mask is bool/int.
  labels: (B, H) token ids, PAD where the target is missing (ignored in the loss); H = 64 in training.
The decoder input is [PAD, labels[:, :-1]] (T5's start token is PAD), as in Chronos.

Sizes: "mini" is google/t5-efficient-mini (d_model 384, d_ff 1536, 4+4 layers, 8 heads, d_kv 64), the
paper's model; "tiny" is t5-efficient-tiny; "1.25m".."10m" follow the reference branch's scaling
configs (d_model 128/186/224/288, 2/2/3/4 layers); "smoke" is for CPU tests. Parameter counts include
the 4096 x d_model embedding.
"""

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import T5Config, T5Model
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.models.t5.modeling_t5 import T5Stack

from fourier_head import Fourier_Head, regularization_loss
from tokenizer import N_SPECIAL, PAD

# transformers >= 5.2x names the decoder's cache argument `cache`; `past_key_values` (the older name, the
# only one up to 5.17) is deprecated and removed in 5.40. Pass the cache under whichever name this version has.
CACHE_ARG = "cache" if "cache" in inspect.signature(T5Stack.forward).parameters else "past_key_values"

SIZES = {  # d_model, d_ff, layers (encoder = decoder), heads, d_kv
    "mini": (384, 1536, 4, 8, 64),
    "tiny": (256, 1024, 4, 4, 64),
    "10m": (288, 1152, 4, 6, 48),
    "5m": (224, 896, 3, 4, 56),
    "2.5m": (186, 744, 2, 3, 62),
    "1.25m": (128, 512, 2, 2, 64),
    "smoke": (32, 64, 1, 2, 16),
}


@dataclass
class ModelConfig:
    size: str = "mini"
    head: str = "fourier"            # "linear" | "fourier"
    num_frequencies: int = 550
    gamma: float = 1e-6              # Fourier regulariser weight, added to the loss
    n_tokens: int = 4096
    dropout: float = 0.1
    init_weight_denominator: float = 1000.0   # Chronos configs: weight / 1000, bias / 10
    init_bias_denominator: float = 10.0
    const_inverse_softmax: float = 1e-5


def t5_config(cfg: ModelConfig) -> T5Config:
    if cfg.size not in SIZES:
        raise ValueError(f"unknown size {cfg.size!r}; choose from {', '.join(SIZES)}")
    d_model, d_ff, layers, heads, d_kv = SIZES[cfg.size]
    return T5Config(vocab_size=cfg.n_tokens, d_model=d_model, d_ff=d_ff, num_layers=layers,
                    num_decoder_layers=layers, num_heads=heads, d_kv=d_kv, dropout_rate=cfg.dropout,
                    feed_forward_proj="relu", initializer_factor=0.05, tie_word_embeddings=True,
                    pad_token_id=PAD, eos_token_id=1, decoder_start_token_id=PAD, use_cache=True)


class Chronos(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.t5 = T5Model(t5_config(cfg))
        d_model = self.t5.config.d_model
        self.n_values = cfg.n_tokens - N_SPECIAL
        if cfg.head == "fourier":
            self.head = Fourier_Head(d_model, self.n_values, cfg.num_frequencies, regularization_gamma=cfg.gamma,
                                     const_inverse_softmax=cfg.const_inverse_softmax,
                                     init_denominator_weight=cfg.init_weight_denominator,
                                     init_denominator_bias=cfg.init_bias_denominator)
        elif cfg.head != "linear":
            raise ValueError(f"unknown head {cfg.head!r}; choose 'linear' or 'fourier'")

    def head_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decoder states (..., d) -> log-probabilities over the value tokens (..., n_values), float32.

        Both heads see the states rescaled by d_model^-0.5, as T5 does before its tied head."""
        hidden = hidden * self.t5.config.d_model ** -0.5
        if self.cfg.head == "linear":
            logits = hidden @ self.t5.shared.weight[N_SPECIAL:].t()
        else:
            logits = self.head(hidden)  # log(pmf + eps); softmax renormalises the eps floor
        return F.log_softmax(logits.float(), dim=-1)

    @property
    def regularization(self) -> torch.Tensor:
        return regularization_loss(self)

    def forward(self, input_ids, attention_mask, labels):
        dec_in = torch.cat([torch.full_like(labels[:, :1], PAD), labels[:, :-1]], dim=1)
        out = self.t5(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec_in)
        return self.head_log_probs(out.last_hidden_state)

    def loss(self, input_ids, attention_mask, labels):
        """Cross-entropy over value tokens (PAD labels ignored) + the Fourier regulariser."""
        return self.loss_from_log_probs(self(input_ids, attention_mask, labels), labels)

    def loss_from_log_probs(self, log_probs, labels):
        """The loss from forward()'s output (DDP wraps forward, so the loss is computed outside it).
        The regulariser set by the head's last forward is added here: the reference never added it."""
        target = torch.where(labels == PAD, torch.full_like(labels, -100), labels - N_SPECIAL)
        ce = F.nll_loss(log_probs.flatten(0, 1), target.flatten(), ignore_index=-100)
        reg = self.regularization.to(ce.device)
        return ce + reg, {"ce": ce.detach(), "reg": reg.detach()}

    @torch.no_grad()
    def sample(self, input_ids, attention_mask, horizon: int, num_samples: int = 20, temperature: float = 1.0,
               top_k: int = 50, generator=None, return_pmfs: bool = False):
        """Autoregressive sampling with a KV cache -> token ids (B, S, horizon); with `return_pmfs`, also the
        PMFs over value tokens (B, S, horizon, n_values) as float32 (only sensible for small S)."""
        B = input_ids.shape[0]
        enc = self.t5.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        enc = enc.repeat_interleave(num_samples, 0)
        mask = attention_mask.repeat_interleave(num_samples, 0)
        token = torch.full((B * num_samples, 1), PAD, dtype=torch.long, device=input_ids.device)
        # one cache object, filled in place by every decoder call (self-attention keys/values grow by one
        # step per call, cross-attention ones are computed once)
        cache = {CACHE_ARG: EncoderDecoderCache(DynamicCache(config=self.t5.config), DynamicCache(config=self.t5.config))}
        out, pmfs = [], []
        for _ in range(horizon):
            dec = self.t5.decoder(input_ids=token, encoder_hidden_states=enc, encoder_attention_mask=mask,
                                  use_cache=True, **cache)
            logp = self.head_log_probs(dec.last_hidden_state[:, -1]) / temperature
            probs = logp.softmax(-1)
            if return_pmfs:
                pmfs.append(probs)
            if 0 < top_k < probs.shape[-1]:
                kth = probs.topk(top_k, dim=-1).values[:, -1:]
                probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
            token = torch.multinomial(probs, 1, generator=generator) + N_SPECIAL
            out.append(token)
        ids = torch.cat(out, 1).view(B, num_samples, horizon)
        if return_pmfs:
            return ids, torch.stack(pmfs, 1).view(B, num_samples, horizon, -1)
        return ids, None


def build_model(cfg: ModelConfig) -> Chronos:
    """The model + head of this experiment from its config (used by train.py, evaluate.py, benchmarks)."""
    return Chronos(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
