// CEnvoyProtos: protoc-c output for Protos/ (scripts/generate-protos). Never edit generated files.
#ifndef CENVOYPROTOS_H
#define CENVOYPROTOS_H
#include "envoy/service/accesslog/v3/als.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#endif
