"""Runs inside .venv-container (Python 3.9, the scikit-learn 1.2-1 image's packages): the real serving stack.

    python container_driver.py serve REQUESTS.json   # -> answers as JSON on stdout
    python container_driver.py codecs CASES.json     # -> sagemaker_containers' decode/encode results

``serve`` builds what the image's ``sagemaker_sklearn_container.serving`` builds for one model: the entry
point's handlers, or the image's defaults where it defines none, handed to sagemaker_containers'
``Transformer`` (which wraps each one so that its exceptions become ClientError), served by its Flask
``Worker``, and asks it through Flask's test client. Everything but the image's four default functions is
the real package; those four are not on PyPI and are written out below as the image has them (branch 1.2-1,
src/sagemaker_sklearn_container/serving.py). Python 3.9 syntax only.
"""

import base64
import json
import os
import sys
import tempfile


def _prepare_environment(model_dir, default_accept):
    # sagemaker_containers reads its environment once, at import: point it at a scratch /opt/ml whose
    # model folder is the extracted archive, and give it the model's default Accept.
    base = tempfile.mkdtemp(prefix="opt-ml-")
    os.symlink(model_dir, os.path.join(base, "model"))
    os.environ["SAGEMAKER_BASE_DIR"] = base
    os.environ["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] = default_accept


def _image_defaults():
    import numpy as np
    from sagemaker_containers.beta.framework import content_types, encoders, worker

    def default_input_fn(input_data, content_type):
        np_array = encoders.decode(input_data, content_type)
        return np_array.astype(np.float32) if content_type in content_types.UTF8_TYPES else np_array

    def default_predict_fn(input_data, model):
        return model.predict(input_data)

    def default_output_fn(prediction, accept):
        return worker.Response(encoders.encode(prediction, accept), mimetype=accept)

    return default_input_fn, default_predict_fn, default_output_fn


def serve(spec):
    _prepare_environment(spec["model_dir"], spec["default_accept"])
    sys.path.insert(0, os.path.join(spec["model_dir"], "code"))  # as SAGEMAKER_SUBMIT_DIRECTORY puts it
    from sagemaker_containers.beta.framework import transformer, worker

    import entry_point

    input_fn, predict_fn, output_fn = _image_defaults()
    transform_fn = getattr(entry_point, "transform_fn", None)
    if transform_fn is not None:
        chain = transformer.Transformer(model_fn=entry_point.model_fn, transform_fn=transform_fn)
    else:
        chain = transformer.Transformer(
            model_fn=entry_point.model_fn,
            input_fn=getattr(entry_point, "input_fn", None) or input_fn,
            predict_fn=getattr(entry_point, "predict_fn", None) or predict_fn,
            output_fn=getattr(entry_point, "output_fn", None) or output_fn,
        )
    chain.initialize()
    client = worker.Worker(transform_fn=chain.transform, module_name="entry_point").test_client()
    answers = []
    for request in spec["requests"]:
        headers = {}
        if request.get("content_type") is not None:
            headers["Content-Type"] = request["content_type"]
        if request.get("accept") is not None:
            headers["Accept"] = request["accept"]
        response = client.post("/invocations", data=base64.b64decode(request["body"]), headers=headers)
        answers.append(
            {
                "status": response.status_code,
                "content_type": response.headers.get("Content-Type"),
                "body": base64.b64encode(response.get_data()).decode(),
            }
        )
    return {"answers": answers, "response_class": type(chain._model).__name__}


def codecs(spec):
    _prepare_environment(tempfile.mkdtemp(), "application/json")
    import numpy as np
    from sagemaker_containers.beta.framework import encoders

    results = []
    for case in spec["decode"]:
        try:
            array = encoders.decode(case["body"], case["content_type"])
            results.append({"shape": list(array.shape), "dtype": array.dtype.kind, "values": array.tolist()})
        except Exception as exc:  # the outcome to compare: which error, if any
            results.append({"error": type(exc).__name__})
    encoded = []
    for case in spec["encode"]:
        array = np.array(case["values"], dtype=case["dtype"])
        try:
            data = encoders.encode(array, case["accept"])
            encoded.append({"text": data if isinstance(data, str) else base64.b64encode(data).decode()})
        except Exception as exc:
            encoded.append({"error": type(exc).__name__})
    return {"decoded": results, "encoded": encoded}


if __name__ == "__main__":
    with open(sys.argv[2]) as handle:
        given = json.load(handle)
    print(json.dumps({"serve": serve, "codecs": codecs}[sys.argv[1]](given)))
