"""MLflow models-from-code entry point: the fine-tuned model logged with each selection run.

MLflow runs this file when the model is loaded; the model itself is tracking.SelectionModel.
"""

from mlflow.models import set_model

from taskselect.tracking import SelectionModel

set_model(SelectionModel())
