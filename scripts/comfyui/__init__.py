"""The ComfyUI client: talking to ComfyUI servers over the network, and nothing else.

No files: results come back as bytes from `GET /history/{id}` then `GET /view`, never from
ComfyUI's output folder (the one exception, `loras`, owns our staging folder in ComfyUI's
models/loras for the checkpoint grid). The package follows what the recordings in
`../shared/fixtures/comfyui/` show: we choose each prompt_id (uuid4) and register it before
posting; completion is `executing` with `node: null` for our prompt_id (`execution_success`
arrives before `/history` is stored); per-prompt messages go only to our clientId's socket; a
dropped socket loses what was sent meanwhile, so jobs are recovered from `/history` and `/queue`;
a socket is reopened only after the old one is closed; a 400 from `/prompt` stops the batch; an
`execution_error` is retried with the same workflow (same seed); a server that stops answering
has its unfinished jobs moved to the others.

Where each part lives:
    errors.py      the ComfyError family and ComfyUI's error answers put into words
    endpoints.py   one aiohttp function per endpoint, and checks on what they answer
    timeouts.py    every time limit, as fields of one frozen `Timeouts`
    connection.py  `ComfyServer`: one server's websocket, our prompts on it, polling
    batch.py       `Job`, `JobResult`, `BatchStats`, `run_jobs`: the multi-server scheduler
    workflow.py    filling the API-format workflow templates in workflows/*.json
    loras.py       staging copies of checkpoints in ComfyUI's models/loras for evaluation

Public interface (used by scripts.gen_reg, scripts.compare, scripts.deploy as `comfyui.NAME`):

    from scripts import comfyui
    async with aiohttp.ClientSession() as session:
        await comfyui.check_checkpoint(session, url, "model.safetensors")   # CheckpointMissing
        results = await comfyui.run_jobs([comfyui.Job("reg_001", workflow, group=None), ...],
                                         [url1, url2], concurrency=2, on_result=callback, retries=2,
                                         timeouts=comfyui.Timeouts(job=600), session=session,
                                         run_id=None, stats=comfyui.BatchStats())
    # every JobResult: .job .status ('done'|'failed'|'cancelled') .images (PNG bytes)
    # .server .prompt_id .seconds .error .attempts
    # lower level: ComfyServer(session, url).start()/submit()/wait()/fetch()/cancel()/close()

Endpoint functions take `(session, url, ...)` and raise `ServerError` on connection failures,
timeouts and 5xx, `PromptRejected` on a 400 from `/prompt`, `OutputUnavailable` on a 4xx from
`/view` (that job is retried or fails; the server is not given up).
"""
from scripts.comfyui.batch import (
    DEFAULT_PREFIX,
    BatchStats,
    Job,
    JobResult,
    OnResult,
    Status,
    new_run_id,
    open_servers,
    run_jobs,
)
from scripts.comfyui.connection import WS_MAX_MSG_SIZE, ComfyServer
from scripts.comfyui.endpoints import (
    check_checkpoint,
    combo_choices,
    delete_queued,
    free,
    get_history,
    get_queue,
    installed,
    interrupt,
    object_info,
    output_images,
    post_prompt,
    safe_image_ref,
    view,
    view_metadata,
)
from scripts.comfyui.errors import (
    CheckpointMissing,
    ComfyError,
    JobTimeout,
    NoServer,
    OutputUnavailable,
    PromptLost,
    PromptRejected,
    ServerError,
    ServerUnreachable,
    UnsafeFilename,
    describe_node_errors,
    describe_rejection,
    error_text,
    no_server_message,
    run_error,
)
from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS, Timeouts

__all__ = [
    "DEFAULT_PREFIX", "DEFAULT_TIMEOUTS", "WS_MAX_MSG_SIZE", "BatchStats", "CheckpointMissing", "ComfyError",
    "ComfyServer", "Job", "JobResult", "JobTimeout", "NoServer", "OnResult", "OutputUnavailable", "PromptLost",
    "PromptRejected", "ServerError", "ServerUnreachable", "Status", "Timeouts", "UnsafeFilename", "check_checkpoint",
    "combo_choices",
    "delete_queued", "describe_node_errors", "describe_rejection", "error_text", "free", "get_history", "get_queue",
    "installed", "interrupt", "new_run_id", "no_server_message", "object_info", "open_servers", "output_images",
    "post_prompt", "run_error", "run_jobs", "safe_image_ref", "view", "view_metadata",
]
