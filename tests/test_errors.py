from pyostree import errors


def test_every_error_has_one_root() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert errors.PyOstreeError in classes
    for cls in classes:
        assert issubclass(cls, errors.PyOstreeError), cls
