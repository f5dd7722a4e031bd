"""Names of the metrics of an LLM application's request windows (``MetricValue.metric``, feature '').

Computed by ``monitoring.services.llm_windows``; read by health, the dashboard's LLM panels
(``monitoring.selectors.llm``) and the daily roll-up of hourly windows (``selectors.series``)."""

PREFIX = "llm."
LATENCY_P50 = "llm.latency_p50_ms"
LATENCY_P95 = "llm.latency_p95_ms"
TOKENS_IN = "llm.tokens_in"
TOKENS_OUT = "llm.tokens_out"
COST = "llm.cost"  # in the currency of the prices used; null when unknown (never 0)
COST_KNOWN = "llm.cost_known"  # 1 or 0
FEEDBACK_MEAN = "llm.feedback_mean"
FEEDBACK_COUNT = "llm.feedback_count"
SAFETY_RATE = "llm.safety_flag_rate"
LLM_METRICS = (
    LATENCY_P50,
    LATENCY_P95,
    TOKENS_IN,
    TOKENS_OUT,
    COST,
    COST_KNOWN,
    FEEDBACK_MEAN,
    FEEDBACK_COUNT,
    SAFETY_RATE,
)
#: how a daily bucket summarises hourly windows: sums, means; latency takes the worst hour
SUMMED = (TOKENS_IN, TOKENS_OUT, COST, FEEDBACK_COUNT)
AVERAGED = (FEEDBACK_MEAN, SAFETY_RATE)
