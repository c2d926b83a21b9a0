"""The API's routes, one group per domain: a new domain adds its controllers here."""

from __future__ import annotations

from litestar import Controller

from momentum_api.admin.audit import AuditLogController
from momentum_api.admin.content import (
    CategoryAdminController,
    CourseAdminController,
    LessonAdminController,
)
from momentum_api.admin.users import UserAdminController
from momentum_api.analytics.controller import (
    AdminAnalyticsController,
    LearnerAnalyticsController,
)
from momentum_api.catalog.controller import CatalogController
from momentum_api.commerce.controller import (
    CheckoutController,
    MyPaymentsController,
    PaymentAdminController,
    PlanController,
    StripeWebhookController,
)
from momentum_api.community.controller import BadgeController, ReviewController
from momentum_api.generation.controller import (
    GenerationJobController,
    OutboxController,
    ReferenceDocumentController,
)
from momentum_api.health import HealthController
from momentum_api.identity.controller import AccountController
from momentum_api.learning.controller import LearningController
from momentum_api.privacy.controller import PrivacyController
from momentum_api.videos.controller import (
    HeyGenWebhookController,
    MediaController,
    VideoAdminController,
)

ROUTE_GROUPS: dict[str, list[type[Controller]]] = {
    "health": [HealthController],
    "identity": [AccountController],
    "catalog": [CatalogController],
    "learning": [LearningController],
    "admin": [
        CourseAdminController,
        LessonAdminController,
        CategoryAdminController,
        UserAdminController,
        AuditLogController,
    ],
    "generation": [GenerationJobController, ReferenceDocumentController, OutboxController],
    "community": [ReviewController, BadgeController],
    "analytics": [LearnerAnalyticsController, AdminAnalyticsController],
    "privacy": [PrivacyController],
    "videos": [HeyGenWebhookController, MediaController, VideoAdminController],
    "commerce": [
        CheckoutController,
        PlanController,
        StripeWebhookController,
        MyPaymentsController,
        PaymentAdminController,
    ],
}

__all__ = ["ROUTE_GROUPS"]
