"""The Azure Functions app: one FunctionApp, the product's blueprints registered on it, nothing else."""

import azure.functions as func

from jit.api import http_api, timers, workers

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(http_api.bp)
app.register_functions(workers.bp)
app.register_functions(timers.bp)
