"""Placeholder until this subcommand lands; registers nothing."""


def register(subparsers) -> None:  # noqa: ANN001
    return None
