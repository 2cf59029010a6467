// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, and carries a trace's context from the receiver
// to the worker in a River job's metadata.
//
// Tracing is off unless the environment asks for an exporter: then the
// tracer provider is a no-op, no exporter runs, and nothing is recorded.
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of Hookline's spans.
const Name = "github.com/hookline/hookline"

// Tracing is a process's tracer provider and what stops it.
type Tracing struct {
	// Provider makes the process's tracers: a no-op when tracing is off.
	Provider trace.TracerProvider
	// Exporters names the exporters running, empty when tracing is off.
	Exporters []string
	shutdown  func(context.Context) error
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return len(t.Exporters) > 0 }

// Tracer returns Hookline's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.Provider.Tracer(Name) }

// Shutdown exports the spans still buffered and stops the exporters; call
// it on exit, with a deadline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Off returns tracing that records nothing.
func Off() *Tracing { return &Tracing{Provider: noop.NewTracerProvider()} }

// FromProvider wraps a provider set up elsewhere (an application's own,
// or a test's in-memory one); Shutdown leaves it to its owner.
func FromProvider(tp trace.TracerProvider) *Tracing {
	return &Tracing{Provider: tp, Exporters: []string{"external"}}
}

// New sets tracing up from the standard variables, read through getenv:
//
//   - OTEL_SDK_DISABLED=true turns it off whatever else is set;
//   - OTEL_TRACES_EXPORTER lists exporters: otlp, console (to stdout) or
//     none; unset, it is otlp if OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and tracing is off
//     otherwise;
//   - OTEL_EXPORTER_OTLP_PROTOCOL (or _TRACES_PROTOCOL): http/protobuf,
//     the default, or grpc;
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, default
//     parentbased_always_on;
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; service defaults to
//     defaultService.
//
// The OTLP exporters read their other settings (headers, timeout,
// certificates, compression) and the batch processor its OTEL_BSP_*
// settings from the process environment, as every OpenTelemetry SDK does.
func New(ctx context.Context, getenv func(string) string, defaultService string, stdout io.Writer) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Off(), nil
	}
	names, err := exporterNames(getenv)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return Off(), nil
	}
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	res, err := resourceFromEnv(getenv, defaultService)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithResource(res)}
	for _, name := range names {
		exp, err := newExporter(ctx, getenv, name, stdout)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{Provider: tp, Exporters: names, shutdown: tp.Shutdown}, nil
}

// exporterNames returns the exporters OTEL_TRACES_EXPORTER asks for, or
// otlp when only an endpoint is set; none means no exporter.
func exporterNames(getenv func(string) string) ([]string, error) {
	v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if v == "" {
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			return []string{"otlp"}, nil
		}
		return nil, nil
	}
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		switch n = strings.TrimSpace(n); n {
		case "none":
			return nil, nil
		case "otlp", "console":
			names = append(names, n)
		default:
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: unknown exporter %q; want otlp, console or none", v, n)
		}
	}
	return names, nil
}

func newExporter(ctx context.Context, getenv func(string) string, name string, stdout io.Writer) (sdktrace.SpanExporter, error) {
	if name == "console" {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, fmt.Errorf("console trace exporter: %w", err)
		}
		return exp, nil
	}
	protocol := strings.TrimSpace(cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL")))
	traces, base := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		// The exporter reads these too, from the process environment;
		// passing them keeps getenv the one source of what is decided here.
		switch {
		case traces != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(traces))
		case base != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(base, "/")+"/v1/traces"))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP trace exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		var opts []otlptracegrpc.Option
		if ep := cmp.Or(traces, base); ep != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(ep))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC trace exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", protocol)
}

// samplerFromEnv returns the sampler OTEL_TRACES_SAMPLER names. The
// parent-based samplers follow the decision carried in a trace's context,
// so a worker samples exactly the events its receiver sampled.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	ratio := func() (float64, error) {
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// resourceFromEnv describes the process: OTEL_RESOURCE_ATTRIBUTES, then
// OTEL_SERVICE_NAME over it, over the SDK's own attributes.
func resourceFromEnv(getenv func(string) string, defaultService string) (*resource.Resource, error) {
	var attrs []attribute.KeyValue
	service := defaultService
	if v := strings.TrimSpace(getenv("OTEL_RESOURCE_ATTRIBUTES")); v != "" {
		for pair := range strings.SplitSeq(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, errors.New("OTEL_RESOURCE_ATTRIBUTES: want key=value pairs separated by commas")
			}
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: value of %s: %w", k, err)
			}
			if k == "service.name" {
				service = dec
				continue
			}
			attrs = append(attrs, attribute.String(k, dec))
		}
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		service = v
	}
	attrs = append(attrs, attribute.String("service.name", service))
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}
