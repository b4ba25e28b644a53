"""An example task file: a task of your own with its interpretation (docs/your-task.md).

Load it explicitly: ``interpeq tasks --tasks examples/my_task.py`` lists and validates
it; ``interpeq zoo --config examples/my_task_zoo.yaml --tasks examples/my_task.py``
trains a zoo of it; ``interpeq compare <zoo> --tasks examples/my_task.py`` compares.
"""

from torch import Tensor

from interpeq.tasks.base import Variable
from interpeq.tasks.catalog import register, shift_right, zeros_col


@register("prev_plus_one")
def prev_plus_one(L: int, V: int) -> list[Variable]:
    """y_i = (x_{i-1} + 1) mod V for i > 0; y_0 = 1.

    prev_i = x_{i-1}, 0 at i = 0 (an attention head looks one position back);
    y_i = (prev_i + 1) mod V (a per-position map: an MLP).
    """

    def prev(x: Tensor) -> Tensor:
        return shift_right(x, zeros_col(x))

    return [
        # name, parents, function of the parents' values, component kind, one-line doc
        Variable("prev", ("x",), prev, "attn", "x_{i-1}, 0 at i=0"),
        Variable("output", ("prev",), lambda p: (p + 1) % V, "mlp", "(prev_i + 1) mod V"),
    ]
