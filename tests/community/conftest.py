from tests.api.conftest import (  # noqa: F401 - fixtures
    admin_account,
    app,
    client,
    learner,
    make_account,
    make_course,
)
