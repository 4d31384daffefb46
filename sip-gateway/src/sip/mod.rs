//! Sans-IO SIP signalling towards trunks.
