from torch import nn


class SimpleClassifier(nn.Module):
    """The continuous-XOR classifier: 2 -> hidden (tanh) -> 1 logit."""

    input_shape = (2,)

    def __init__(self, num_inputs: int = 2, num_hidden: int = 4, num_outputs: int = 1):
        super().__init__()
        self.input_shape = (num_inputs,)
        self.linear1 = nn.Linear(num_inputs, num_hidden)
        self.act_fn = nn.Tanh()
        self.linear2 = nn.Linear(num_hidden, num_outputs)

    def forward(self, x):
        return self.linear2(self.act_fn(self.linear1(x)))
