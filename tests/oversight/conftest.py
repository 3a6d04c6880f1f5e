from tests.support.postgres import postgres_server  # noqa: F401
from tests.support.server_proc import (  # noqa: F401
    api_server,
    postgres_api_server,
    sqlite_api_server,
)
