"""The AWS backend: SageMaker Pipelines, Model Registry and serverless endpoints.

boto3 for every call; the SageMaker SDK (v2) only in pipeline.py, where the pipeline is built.
"""
