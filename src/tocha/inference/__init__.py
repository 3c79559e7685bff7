"""Using a trained model: the inference model (preprocessing + model), predict, evaluate."""
