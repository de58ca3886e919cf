"""The Decision Transformer for Atari (minGPT, as in the DT paper and the Fourier-head reference).

Tokens (reward-conditioned): r_1 s_1 a_1 r_2 s_2 a_2 ... ; the action of step t is predicted from the
output at s_t, so the model never sees a_t when predicting it. States go through the Nature-style conv
encoder (4x84x84 -> 128, tanh), returns-to-go through Linear(1, 128) + tanh, actions through an
Embedding(18, 128) + tanh. Position = learned in-window position + learned embedding of the window's
global timestep. 6 layers, 8 heads, 128 dims, dropout 0.1. Head: Linear(128, 18, no bias) or
Fourier_Head(128, 18, N) with gamma = 1e-6.

All action ids (inputs, targets, sampled actions) are in the joystick order of atari.JOYSTICK_ORDER.

`build_model(cfg)` is the entry point; `DecisionTransformer.forward` takes
  states    (B, T, 4, 84, 84) uint8 (or float in [0, 1])
  actions   (B, T) long, or (B, T-1) at inference (the actions before the last state), or None (T = 1)
  rtg       (B, T, 1) float, raw returns-to-go (not scaled, as the reference)
  timesteps (B, 1, 1) long, the timestep of the window's first step
and returns logits (B, T, 18) (log-PMFs for the Fourier head); `loss` adds the Fourier regulariser.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fourier_head import Fourier_Head, regularization_loss


@dataclass
class DTConfig:
    num_actions: int = 18
    context: int = 30
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 128
    dropout: float = 0.1
    max_timestep: int = 10_000     # set from the dataset (largest timestep in it)
    head: str = "linear"           # linear | fourier
    num_frequencies: int = 0
    gamma: float = 1e-6            # Fourier regulariser weight, added to the loss


class Block(nn.Module):
    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return x + self.mlp(self.ln2(x))


class DecisionTransformer(nn.Module):
    def __init__(self, cfg: DTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.n_embd
        self.state_encoder = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, d), nn.Tanh())
        self.ret_emb = nn.Sequential(nn.Linear(1, d), nn.Tanh())
        self.action_emb = nn.Sequential(nn.Embedding(cfg.num_actions, d), nn.Tanh())
        self.pos_emb = nn.Parameter(torch.zeros(1, 3 * cfg.context + 1, d))
        self.global_pos_emb = nn.Parameter(torch.zeros(1, cfg.max_timestep + 1, d))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.apply(self._init_weights)  # before the head: the Fourier head keeps its own initialisation
        if cfg.head == "linear":
            self.head = nn.Linear(d, cfg.num_actions, bias=False)
            nn.init.normal_(self.head.weight, std=0.02)
        elif cfg.head == "fourier":
            if cfg.num_frequencies < 1:
                raise ValueError("the Fourier head needs num_frequencies >= 1")
            self.head = Fourier_Head(d, cfg.num_actions, cfg.num_frequencies, regularization_gamma=cfg.gamma)
        else:
            raise ValueError(f"unknown head {cfg.head!r}; choose linear or fourier")

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight); nn.init.zeros_(m.bias)

    def forward(self, states, actions, rtg, timesteps):
        b, t = states.shape[:2]
        if states.dtype == torch.uint8:
            states = states.float() / 255.0
        s = self.state_encoder(states.reshape(b * t, 4, 84, 84).contiguous(memory_format=torch.channels_last))
        s = s.reshape(b, t, -1)
        r = self.ret_emb(rtg.to(s.dtype))
        n_act = 0 if actions is None else actions.shape[1]
        if n_act not in (t, t - 1):
            raise ValueError(f"actions must cover all {t} steps or all but the last, got {n_act}")
        tokens = torch.empty(b, 2 * t + n_act, s.shape[-1], device=s.device, dtype=s.dtype)
        tokens[:, 0::3][:, :t] = r
        tokens[:, 1::3][:, :t] = s
        if n_act:
            tokens[:, 2::3][:, :n_act] = self.action_emb(actions).to(s.dtype)
        ts = timesteps.reshape(b).clamp(max=self.cfg.max_timestep)
        pos = self.global_pos_emb[0, ts][:, None, :] + self.pos_emb[:, :tokens.shape[1]]
        x = self.blocks(self.drop(tokens + pos))
        return self.head(self.ln_f(x[:, 1::3]))  # outputs at the state tokens -> action logits (B, T, A)

    def loss(self, logits, targets):
        """Cross-entropy (+ the Fourier regulariser from the last forward; the reference forgot it)."""
        ce, reg = self.loss_terms(logits, targets)
        return ce + reg

    def loss_terms(self, logits, targets):
        """(cross-entropy, Fourier regulariser of the last forward; zero for the linear head), logged apart."""
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        return ce, regularization_loss(self)

    def optim_groups(self, weight_decay: float):
        """Weight decay on the matmul weights (Linear, Conv2d, the Fourier head's linear) only."""
        decay, no_decay = [], []
        for module in self.modules():
            for name, p in module.named_parameters(recurse=False):
                if name == "weight" and isinstance(module, (nn.Linear, nn.Conv2d)):
                    decay.append(p)
                else:
                    no_decay.append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_model(cfg: DTConfig) -> DecisionTransformer:
    """The DT of `cfg` (see the module docstring for the batch shapes it takes)."""
    return DecisionTransformer(cfg)


def num_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":  # print the sizes
    for head, n in (("linear", 0), ("fourier", 14)):
        m = build_model(DTConfig(head=head, num_frequencies=n))
        print(head, n, f"{num_params(m) / 1e6:.3f} M parameters")
