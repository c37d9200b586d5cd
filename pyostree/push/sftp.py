"""placeholder"""
class SftpPublisher:  # type: ignore
    def __init__(self, *a, **k): raise NotImplementedError
