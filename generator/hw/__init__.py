"""The hardware side: the IR, lowering and streamlining, the golden model and its comparison
with the float model, the unit plans, boards, folding, the pipeline choice and the cost and
technology models. Imports generator.model and generator.core, never a backend or a flow."""
