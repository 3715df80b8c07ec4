"""MLflow models-from-code entry point: the head model logged with each selection run.

MLflow runs this file when the model is loaded; the model itself is tracking.HeadModel.
"""

from mlflow.models import set_model

from taskselect.tracking import HeadModel

set_model(HeadModel())
