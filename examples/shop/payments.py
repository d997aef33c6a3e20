from shop import gateway


def charge(amount: int) -> dict:
    return gateway.send(amount)
