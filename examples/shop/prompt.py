def confirm(question: str) -> bool:
    return input(question + " [y/n] ").strip().lower() == "y"
