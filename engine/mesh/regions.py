"""MediaPipe FaceMesh landmark indices the mesh engine uses, grouped by feature.

Pairs are (portrait's right = image left, portrait's left = image right).
"""
from __future__ import annotations

# Eyes: corners and lid curves, each listed from the outer to the inner corner.
EYE_R_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_R_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_L_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_L_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
EYE_CORNERS = ((33, 133), (263, 362))  # (outer, inner) per eye
IRIS_CENTER = (468, 473)
UPPER_LID = (159, 386)
LOWER_LID = (145, 374)  # the lower lid's lowest point
UNDER_EYE = (230, 450)  # the lid skin just below it (the bunching of a smile's AU6)
IRIS_RING = ((469, 470, 471, 472), (474, 475, 476, 477))

# Brows (lower edge from inner to outer, upper edge from inner to outer).
BROW_INNER = (55, 285)
BROW_INNER_UPPER = (107, 336)
BROW_MID = (52, 282)
BROW_MID_UPPER = (105, 334)
BROW_OUTER = (46, 276)
BROW_OUTER_UPPER = (70, 300)

FOREHEAD_INNER = (108, 337)  # above the inner brows
FOREHEAD_OUTER = (69, 299)  # above the brows' middle
FOREHEAD_MID = 151  # mid-forehead, on the midline

# Mid face.
CHEEK_HIGH = (117, 346)
CHEEK_UNDER_EYE = (50, 280)
CHEEK_LOW = (205, 425)
NOSE_WING = (129, 358)
NOSE_SIDE = (64, 294)
NASOLABIAL = (216, 436)
NOSE_TIP = 1

# Mouth: corners, outer and inner lip curves (corner to corner, image left to right).
MOUTH_CORNERS = (61, 291)
LIP_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LOWER_LIP_SIDE = (91, 321)
UPPER_LIP_MID = 0  # the upper lip's outer edge at mid-mouth
LOWER_LIP_MID = 17  # the lower lip's outer edge at mid-mouth
CHIN = 152
FOREHEAD = 10

# Face outline (for the region a warp may touch).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109)
