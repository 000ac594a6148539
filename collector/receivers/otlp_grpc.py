"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService Export, as raw bytes.

Requests are taken undeserialised so that the shared ingest path can salvage the good items of a
partly bad request exactly as it does for HTTP. Status mapping only.
"""

from __future__ import annotations

import hmac
import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from spanlake.collector.errors import Overloaded, RequestError
from spanlake.collector.ingest import Ingest

logger = logging.getLogger(__name__)

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


def _abort_overloaded(context: grpc.ServicerContext, exc: Overloaded) -> None:
    """RESOURCE_EXHAUSTED with RetryInfo: the OTLP spec's retryable 'slow down' answer."""
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=exc.retry_after_s))
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=str(exc), details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))


class GrpcReceiver:
    """Runs a grpc.Server with the three OTLP services on a thread pool."""

    def __init__(self, host: str, port: int, ingest: Ingest, max_bytes: int, auth_token: str | None,
                 workers: int = 8) -> None:
        self._ingest = ingest
        self._auth = auth_token
        options = [("grpc.max_receive_message_length", max_bytes), ("grpc.so_reuseport", 0)]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
                                   options=options)
        for signal, service in SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(signal), request_deserializer=None,
                response_serializer=lambda msg: msg.SerializeToString())
            self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind OTLP/gRPC on {host}:{port}")

    def _handler(self, signal: str) -> Any:
        def export(body: bytes, context: grpc.ServicerContext) -> Any:
            if self._auth is not None and not self._authorized(context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            try:
                return self._ingest.accept(signal, body, "protobuf", "grpc").response
            except Overloaded as exc:
                _abort_overloaded(context, exc)
            except RequestError as exc:
                logger.warning("grpc %s: %s", signal, exc)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Exception:  # receiver boundary: answer INTERNAL, never die
                logger.exception("grpc %s: internal error", signal)
                context.abort(grpc.StatusCode.INTERNAL, "internal error")
            return None

        return export

    def _authorized(self, context: grpc.ServicerContext) -> bool:
        given = dict(context.invocation_metadata()).get("authorization", "")
        return hmac.compare_digest(str(given).encode(), f"Bearer {self._auth}".encode())

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait()
