class Money:
    @staticmethod
    def round(value: float) -> float:
        return round(value, 2)

    def total(self, values: list[float]) -> float:
        return self.round(sum(values))
