"""Built-in explainer plugins: neighbourhood attribution of the linear item-item models (EASE, ItemKNN), gradient x
input for the transformer sequence models (SASRec, LM-SASRec, BERT4Rec), and text similarity for the content
model (recux.explain has the contract)."""

from recux.plugins.explainers import gradient, neighbourhood, text_similarity  # noqa: F401  (importing registers)
