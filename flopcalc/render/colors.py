"""The charts' colours (Tableau 10), named once so that a kind of series looks the same on every page."""

BLUE, ORANGE, RED, TEAL, GREEN = "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f"
YELLOW, PURPLE, PINK, BROWN, GREY = "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"
PALETTE = (BLUE, ORANGE, GREEN, RED, TEAL, YELLOW, PURPLE, PINK, BROWN, GREY)  # series coloured in turn
FORWARD, BACKWARD = BLUE, ORANGE  # a pass's colour wherever a page splits forward from backward
# a training step's parts wherever a page splits one: its time by phase, its FLOPs by pass, a pipeline's passes
STEP_PARTS = {"forward": FORWARD, "backward": BACKWARD, "optimizer": GREEN, "teacher forward": GREEN}
