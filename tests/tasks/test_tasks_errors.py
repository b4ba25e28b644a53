"""Bad input fails at the boundary with a message that says what is valid."""

import pytest

from interpeq.tasks import CausalModel, Variable, get_algorithm, get_task, list_tasks


@pytest.fixture
def task():
    return get_task("sort_ascending")


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_task("sortt")
    for name in list_tasks():
        assert name in str(err.value)


def test_unknown_algorithm_lists_valid_names():
    with pytest.raises(ValueError, match="algorithm_1, algorithm_2"):
        get_algorithm("algorithm_7")


def test_unknown_variable_lists_valid_names(task):
    base, source = task.sample_pairs(2, seed=0)
    with pytest.raises(ValueError, match=r"'rnak'.*intervenable variables: rank"):
        task.intervene(base, source, ["rnak"])
    for not_intervenable in ("x", "output"):
        with pytest.raises(ValueError, match="rank"):
            task.intervene(base, source, not_intervenable)
    with pytest.raises(ValueError, match="variables: x, rank, output"):
        task.model.depth("nope")
    with pytest.raises(ValueError, match="shapes differ"):
        task.model.intervene(base[:, 1:], source[:1, 1:], ["rank"])


def test_tokens_outside_vocab(task):
    tokens = task.sample(3, seed=0)
    tokens[1, 4] = 12
    tokens[2, 2] = -1
    with pytest.raises(ValueError, match=r"0\.\.10.*\[-1, 12\]"):
        task.labels(tokens)
    tokens = task.sample(3, seed=0)
    tokens[0, 5] = task.bos  # BOS is not content
    with pytest.raises(ValueError, match=r"out-of-vocabulary values \[11\]"):
        task.labels(tokens)


def test_wrong_sequence_length(task):
    with pytest.raises(ValueError, match="expected sequence length 10.*got 9"):
        task.labels(task.sample(2, seed=0)[:, :9])


def test_missing_bos(task):
    tokens = task.sample(2, seed=0)
    tokens[:, 0] = 3
    with pytest.raises(ValueError, match="missing BOS.*BOS token 11.*found \\[3\\]"):
        task.labels(tokens)
    with pytest.raises(ValueError, match="missing BOS"):
        task.intervene(task.sample(2, 0), tokens, "rank")


def test_wrong_dtype_or_ndim(task):
    tokens = task.sample(2, seed=0)
    with pytest.raises(ValueError, match="integer"):
        task.labels(tokens.float())
    with pytest.raises(ValueError, match="2-D"):
        task.labels(tokens[0])
    with pytest.raises(ValueError, match="torch.Tensor"):
        task.labels(tokens.tolist())


def test_causal_model_validation():
    ident = lambda a: a  # noqa: E731
    with pytest.raises(ValueError, match="last variable"):
        CausalModel([Variable("a", ("x",), ident)])
    with pytest.raises(ValueError, match="duplicate"):
        CausalModel(
            [
                Variable("a", ("x",), ident),
                Variable("a", ("x",), ident),
                Variable("output", ("a",), ident),
            ]
        )
    with pytest.raises(ValueError, match="topological"):
        CausalModel(
            [
                Variable("a", ("b",), ident),
                Variable("b", ("x",), ident),
                Variable("output", ("a",), ident),
            ]
        )
    with pytest.raises(ValueError, match="kind"):
        Variable("a", ("x",), ident, kind="conv")
    with pytest.raises(ValueError, match="L=10, V=5"):
        get_task("rank", seq_len=11, n_values=5)
