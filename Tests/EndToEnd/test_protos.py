"""Protos/ must be wire-identical to Envoy's v3 API and OpenTelemetry's OTLP: every message,
field (name, number, type, label, oneof), enum value and the service/method that Protos/ declares
is compared with the owners' own descriptors, Envoy's from xds-protos and OpenTelemetry's from
opentelemetry-proto. Fields they have and Protos/ leaves out are allowed."""
import glob
import os
import subprocess

from google.protobuf import descriptor_pb2, descriptor_pool

# Importing registers Envoy's descriptors in the default pool.
from envoy.service.accesslog.v3 import als_pb2  # noqa: F401
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: F401
from opentelemetry.proto.logs.v1 import logs_pb2

from conftest import ROOT, require_tool

PROTOS = os.path.join(ROOT, "Protos")


def our_descriptors(tmp_path):
    protoc = require_tool("protoc")
    files = sorted(os.path.relpath(p, PROTOS) for p in glob.glob(os.path.join(PROTOS, "**", "*.proto"), recursive=True))
    out = tmp_path / "ours.pb"
    subprocess.run([protoc, f"-I{PROTOS}", "-I/usr/include", f"--descriptor_set_out={out}", *files], check=True)
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    descriptor_set.ParseFromString(out.read_bytes())
    return descriptor_set


def walk_messages(package, messages, prefix=""):
    for message in messages:
        name = f"{prefix}{message.name}"
        yield f"{package}.{name}", message
        yield from walk_messages(package, message.nested_type, prefix=f"{name}.")


def walk_enums(package, file):
    for enum in file.enum_type:
        yield f"{package}.{enum.name}", enum
    for full_name, message in walk_messages(package, file.message_type):
        for enum in message.enum_type:
            yield f"{full_name}.{enum.name}", enum


def test_protos_match_envoy_and_opentelemetry(tmp_path):
    # xds-protos carries an older copy of these modules; scripts/setup installs the real package last.
    assert "event_name" in logs_pb2.LogRecord.DESCRIPTOR.fields_by_name, "opentelemetry-proto is xds-protos' old copy"
    pool = descriptor_pool.Default()
    checked_by_package = {}
    descriptor_set = our_descriptors(tmp_path)
    checked_fields = 0
    problems = []
    for file in descriptor_set.file:
        for full_name, message in walk_messages(file.package, file.message_type):
            if message.options.map_entry:
                continue
            theirs = pool.FindMessageTypeByName(full_name)
            by_number = {f.number: f for f in theirs.fields}
            for field in message.field:
                other = by_number.get(field.number)
                where = f"{full_name}.{field.name} = {field.number}"
                if other is None:
                    problems.append(f"{where}: Envoy has no field {field.number}")
                    continue
                if other.name != field.name:
                    problems.append(f"{where}: Envoy calls it {other.name}")
                if other.type != field.type:
                    problems.append(f"{where}: type {field.type} but Envoy's is {other.type}")
                if other.is_repeated != (field.label == field.LABEL_REPEATED):
                    problems.append(f"{where}: repeated differs")
                their_type = other.message_type or other.enum_type
                if their_type is not None and "." + their_type.full_name != field.type_name:
                    problems.append(f"{where}: type {field.type_name} but Envoy's is {their_type.full_name}")
                ours_oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
                theirs_oneof = other.containing_oneof.name if other.containing_oneof else None
                if field.proto3_optional:
                    ours_oneof = None
                if ours_oneof != theirs_oneof:
                    problems.append(f"{where}: oneof {ours_oneof} but Envoy's is {theirs_oneof}")
                checked_fields += 1
                checked_by_package[file.package] = checked_by_package.get(file.package, 0) + 1
        for full_name, enum in walk_enums(file.package, file):
            theirs = {v.number: v.name for v in pool.FindEnumTypeByName(full_name).values}
            for value in enum.value:
                if theirs.get(value.number) != value.name:
                    problems.append(f"{full_name}.{value.name} = {value.number}: Envoy has {theirs.get(value.number)}")
        for service in file.service:
            theirs = pool.FindServiceByName(f"{file.package}.{service.name}")
            for method in service.method:
                other = theirs.FindMethodByName(method.name)
                if other is None or other.input_type.full_name != method.input_type.lstrip(".") \
                        or other.output_type.full_name != method.output_type.lstrip(".") \
                        or other.client_streaming != method.client_streaming \
                        or other.server_streaming != method.server_streaming:
                    problems.append(f"{service.name}.{method.name} differs from Envoy's")
    assert problems == []
    # AccessLogCommon alone has 33 fields; a vacuous pass would check far fewer.
    assert checked_fields > 150, checked_fields
    # LogRecord 11, AnyValue 7, KeyValue 2, ...: every OTLP file was compared.
    assert checked_by_package["opentelemetry.proto.logs.v1"] >= 17, checked_by_package
    assert checked_by_package["opentelemetry.proto.common.v1"] >= 17, checked_by_package
    assert checked_by_package["opentelemetry.proto.collector.logs.v1"] == 4, checked_by_package
