# %%
"""Lesson 9: devices.

en: Devices: CPU, CUDA and MPS, moving tensors and timing a matmul
pt: Dispositivos: CPU, CUDA e MPS, como mover tensores e medir um matmul
"""

import time

import torch

from tocha.lessons.text import say, t

say(
    """
    A tensor lives on a device: the CPU, an NVIDIA GPU ("cuda") or an Apple GPU ("mps"). An
    operation runs where its tensors are, and they must all be on the same device. The usual
    choice: cuda if available, else mps, else cpu.
    """,
    """
    Um tensor mora num dispositivo: a CPU, uma GPU NVIDIA ("cuda") ou uma GPU da Apple ("mps").
    Uma operação roda onde estão os seus tensores, e todos precisam estar no mesmo dispositivo. A
    escolha de sempre: cuda se houver, senão mps, senão cpu.
    """,
)


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


device = pick_device()
print("device =", device)

# %%
say(
    """
    .to(device) returns the tensor on that device (a copy, unless it is there already).
    Accelerators work asynchronously: a call returns before the work is done. To time them
    honestly, warm up first, then synchronize before reading the clock.
    """,
    """
    O .to(device) devolve o tensor naquele dispositivo (uma cópia, a não ser que ele já esteja lá).
    Aceleradores trabalham de forma assíncrona: a chamada retorna antes de o trabalho terminar.
    Para medir o tempo direito, rode uma vez para aquecer e sincronize antes de ler o relógio.
    """,
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_matmul(a: torch.Tensor, b: torch.Tensor, repeats: int = 5) -> tuple[torch.Tensor, float]:
    """a @ b and its average time in seconds."""
    result = a @ b  # warm-up: the first call pays for setup
    synchronize(a.device)
    start = time.perf_counter()
    for _ in range(repeats):
        result = a @ b
    synchronize(a.device)
    return result, (time.perf_counter() - start) / repeats


# "highest" is the default: full float32 matmuls, not the faster, rougher TF32 some GPUs offer.
torch.set_float32_matmul_precision("highest")
torch.manual_seed(0)
a, b = torch.randn(512, 512), torch.randn(512, 512)
reference = (a.double() @ b.double()).float()  # float64 on the CPU: the accurate answer
devices = [torch.device("cpu")] + ([device] if device.type != "cpu" else [])
for d in devices:
    result, seconds = timed_matmul(a.to(d), b.to(d))
    gap = (result.cpu() - reference).abs().max().item()
    print(
        f"{d.type:>4}: 512x512 @ 512x512 {t('in', 'em')} {1000 * seconds:.2f} ms, "
        f"{t('largest difference', 'maior diferença')} {gap:.1e}"
    )
    assert result.device.type == d.type
    assert torch.allclose(result.cpu(), reference, rtol=1e-3, atol=1e-3)

# %%
say(
    """
    Every device gives the same answer up to float32 rounding. Moving data between devices
    costs time, so move the model and each batch once and keep the work there.
    """,
    """
    Todo dispositivo dá a mesma resposta, a menos do arredondamento de float32. Mover dados entre
    dispositivos custa tempo, então mova o modelo e cada lote uma vez e deixe o trabalho por lá.
    """,
)
x = torch.ones(3)
assert x.to(device).device.type == device.type
assert x.to(device).cpu().tolist() == [1.0, 1.0, 1.0]
