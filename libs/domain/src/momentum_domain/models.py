"""Every table of the platform, imported in one place so the metadata is complete."""

from momentum_domain.audit.models import AuditLog
from momentum_domain.base import Base
from momentum_domain.catalog.models import Category, Course, CourseStatus, Lesson, VideoStatus
from momentum_domain.commerce.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    Subscription,
)
from momentum_domain.community.models import Badge, Review, UserBadge
from momentum_domain.generation.models import (
    CourseGenerationJob,
    GenerationJobDocument,
    GenerationStep,
    JobStatus,
    LlmCall,
    PdfReferenceChunk,
    PdfReferenceDocument,
    StepKind,
    StepStatus,
)
from momentum_domain.kit.webhooks import ProcessedWebhookEvent
from momentum_domain.learning.models import Enrollment, EnrollmentStatus, Progress
from momentum_domain.notifications.models import OutboxMessage, OutboxStatus
from momentum_domain.users.models import RefreshToken, Role, User
from momentum_domain.videos.models import LessonVideoScript, VideoJobStatus

__all__ = [
    "AuditLog",
    "Badge",
    "Base",
    "Category",
    "Course",
    "CourseGenerationJob",
    "CourseStatus",
    "Enrollment",
    "EnrollmentStatus",
    "GenerationJobDocument",
    "GenerationStep",
    "JobStatus",
    "Lesson",
    "LessonVideoScript",
    "LlmCall",
    "OutboxMessage",
    "OutboxStatus",
    "Payment",
    "PaymentKind",
    "PaymentStatus",
    "PdfReferenceChunk",
    "PdfReferenceDocument",
    "ProcessedWebhookEvent",
    "Progress",
    "RefreshToken",
    "Review",
    "Role",
    "StepKind",
    "StepStatus",
    "Subscription",
    "User",
    "UserBadge",
    "VideoJobStatus",
    "VideoStatus",
]
